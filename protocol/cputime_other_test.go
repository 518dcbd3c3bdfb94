//go:build !linux

package protocol

import "time"

// threadCPUTime is unknown on this platform.
func threadCPUTime() (time.Duration, bool) { return 0, false }
