//go:build unix

package fountain

import (
	"time"

	"golang.org/x/sys/unix"
)

// processCPU returns the CPU time (user and system) the process has used
// so far, or 0 where it cannot be read.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
