package model

import (
	_ "embed"
	"sync"
)

// demoONNX is the demo network built by internal/demonet; a test there checks it is up to date.
//
//go:embed demo.onnx
var demoONNX []byte

var demo struct {
	once sync.Once
	net  *Network
}

// DemoName is the Path of the demo network.
const DemoName = "demo (built-in)"

// Demo returns the embedded demo network: a material-count toy in lc0's layout whose outputs have closed
// forms (see internal/demonet). It is shared; treat it as read-only.
func Demo() *Network {
	demo.once.Do(func() {
		n, err := LoadBytes(DemoName, demoONNX)
		if err != nil {
			panic("model: embedded demo network does not load: " + err.Error()) // a build defect, caught by tests
		}
		demo.net = n
	})
	return demo.net
}

// DemoBytes returns a copy of the embedded demo network's file.
func DemoBytes() []byte { return append([]byte(nil), demoONNX...) }
