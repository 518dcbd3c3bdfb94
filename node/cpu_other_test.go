//go:build !unix

package node

import (
	"testing"
	"time"
)

// cpuTime is not measured here: it returns 0.
func cpuTime(testing.TB) time.Duration { return 0 }

// syncDisks does nothing here.
func syncDisks() {}
