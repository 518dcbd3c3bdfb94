//go:build race

package node

import "time"

// closeBound is how long Close may take in TestCloseInFlight. Close waits
// for a decoder or encoder that is working on a block when it comes (that
// work cannot be interrupted); under the race detector, with seven nodes
// on a shared machine, a block takes up to a few times longer than the
// second allowed without it.
const closeBound = 4 * time.Second
