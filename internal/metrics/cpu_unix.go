//go:build unix

package metrics

import (
	"fmt"
	"syscall"
	"time"
)

// processCPUTime returns the user plus system CPU time of the whole process.
// getrusage is used rather than /proc/self/stat because it reports
// microseconds instead of clock ticks (usually 10 ms) and needs no parsing.
func processCPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage(RUSAGE_SELF): %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
