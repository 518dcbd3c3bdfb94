//go:build !linux

package node

import "os"

// startWriteback is a no-op where the kernel offers no asynchronous
// writeback of a range; the sync at the end of a download writes it all.
func startWriteback(f *os.File, off, n int64) {}
