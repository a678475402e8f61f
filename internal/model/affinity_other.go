//go:build !linux

package model

import "runtime"

// affinityCPUs counts the CPUs the process may use as the Go runtime sees them (affinity where the system
// has it).
func affinityCPUs() int { return runtime.NumCPU() }
