package model

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// affinityCPUs counts the CPUs in the process's affinity mask, read now (it may have changed since the Go
// runtime counted them at start), falling back on the Go runtime's count.
func affinityCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() > 0 {
		return set.Count()
	}
	return runtime.NumCPU()
}
