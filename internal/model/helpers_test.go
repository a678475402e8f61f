package model

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// sharedDir is ../shared beside the checkout; tests skip unless it holds the reference nets.
func sharedDir(t testing.TB) string {
	t.Helper()
	return filepath.Dir(testutil.Shared(t, "models"))
}

var testRT struct {
	once sync.Once
	rt   *SessionCache
	err  error
}

// testRuntime is one CPU runtime shared by the package's tests.
func testRuntime(t testing.TB) *SessionCache {
	t.Helper()
	lib := testutil.ORTLib(t)
	testRT.once.Do(func() {
		if _, err := InitRuntime([]string{lib}); err != nil {
			testRT.err = err
			return
		}
		testRT.rt, testRT.err = NewSessionCache(SessionOptions{Device: DeviceCPU})
	})
	if testRT.err != nil {
		t.Fatal(testRT.err)
	}
	return testRT.rt
}

// refNets lists the real networks with a refdump, skipping when the data is absent.
func refNets(t testing.TB) []string {
	t.Helper()
	sh := sharedDir(t)
	paths, err := filepath.Glob(filepath.Join(sh, "models", "*.onnx"))
	if err != nil || len(paths) == 0 {
		testutil.Missing(t, "no nets in %s/models", sh)
	}
	return paths
}

func refdumpFor(t testing.TB, netPath string) string {
	t.Helper()
	base := strings.TrimSuffix(filepath.Base(netPath), ".onnx")
	return filepath.Join(sharedDir(t), "reference", "lc0", base+".refdump.jsonl")
}
