// Command lczerolens is the command-line interface of lczerolens; all of it lives in internal/cli.
package main

import (
	"os"

	"github.com/lczerolens/lczerolens/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
