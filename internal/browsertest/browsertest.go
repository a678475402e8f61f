// Package browsertest drives headless Chromium (Debian's chromium package) for the tests of the web
// explorer and the HTML report: it starts a browser per test and records what a page does that a test
// must refuse, console errors, uncaught exceptions and network requests.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// Chromium returns the browser's path, or skips the test (fails it under CI=true) when none is installed.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LCZEROLENS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testutil.Missing(t, "no chromium on PATH (apt-get install chromium, or set LCZEROLENS_CHROMIUM): browser tests need it")
	return ""
}

// Log is what a page did that tests look at.
type Log struct {
	mu       sync.Mutex
	errors   []string
	requests []string
}

// Errors returns the console errors and uncaught exceptions seen so far.
func (l *Log) Errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...)
}

// Requests returns the URLs the page asked for, in order.
func (l *Log) Requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.requests...)
}

// New starts a headless browser for the test and returns a context to run chromedp actions in (ending
// after timeout) and the page's log. The browser is closed when the test ends.
func New(t testing.TB, timeout time.Duration) (context.Context, *Log) {
	t.Helper()
	path := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // containers run tests as root, where Chromium's sandbox refuses to start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTime(); cancelCtx(); cancelAlloc() })
	log := &Log{}
	err := chromedp.Listen(ctx, func(ev any) {
		log.mu.Lock()
		defer log.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				log.errors = append(log.errors, "console."+string(e.Type)+": "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			log.errors = append(log.errors, "exception: "+msg)
		case *network.EventRequestWillBeSent:
			log.requests = append(log.requests, e.Request.URL)
		case *network.EventLoadingFailed:
			log.errors = append(log.errors, "request failed: "+e.ErrorText)
		}
	})
	// Listen starts the browser (its network domain is on by default, so every request is recorded).
	if err != nil {
		t.Fatalf("browsertest: start %s: %v", path, err)
	}
	return ctx, log
}
