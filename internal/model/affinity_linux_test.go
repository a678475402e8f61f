package model

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAffinityCPUs counts the CPUs of the process's affinity mask from /proc (an independent reading), then
// narrows the mask of this thread to one CPU and wants the count to follow.
func TestAffinityCPUs(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	want := -1
	for _, line := range strings.Split(string(status), "\n") {
		if list, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			want = countCPUList(t, strings.TrimSpace(list))
		}
	}
	if want < 1 {
		t.Skip("no Cpus_allowed_list in /proc/self/status")
	}
	if got := affinityCPUs(); got != want {
		t.Errorf("affinityCPUs() = %d, /proc/self/status allows %d", got, want)
	}
	if want > 1 {
		runtime.LockOSThread() // the mask set below is this thread's; the thread ends with the test
		if err := pinToOneCPU(); err != nil {
			t.Skipf("cannot narrow the affinity mask: %v", err)
		}
		if got := affinityCPUs(); got != 1 {
			t.Errorf("affinityCPUs() = %d on a thread pinned to one CPU, want 1", got)
		}
	}
}

// countCPUList counts a kernel CPU list such as "0-3,8,10-11".
func countCPUList(t *testing.T, list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("cpu list %q: %v", list, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				t.Fatalf("cpu list %q: %v", list, err)
			}
		}
		n += b - a + 1
	}
	return n
}

// pinToOneCPU narrows the calling thread's affinity mask to its first allowed CPU.
func pinToOneCPU() error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return err
	}
	for cpu := range len(set) * 64 {
		if set.IsSet(cpu) {
			var one unix.CPUSet
			one.Set(cpu)
			return unix.SchedSetaffinity(0, &one)
		}
	}
	return nil
}
