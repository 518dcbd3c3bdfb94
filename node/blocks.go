package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

// blockState is what a session holds of the file, block by block: the
// decoded (finished) blocks, those holding enough symbols to decode
// (pending), whether the whole file is here, and the end of the download.
// It has its own lock, taken by no one while they hold another, and a
// change notification for those that wait for its next change.
type blockState struct {
	z int // number of source blocks

	mu       sync.Mutex
	complete bool // the original source, or a finished download
	finished protocol.BlockSet
	pending  protocol.BlockSet // enough symbols held, decode pending
	at       [protocol.MaxSourceBlocks]time.Time
	changed  chan struct{} // closed and replaced at every change

	// bits mirrors finished for lock-free reads on the symbol path.
	bits [protocol.MaxSourceBlocks / 64]atomic.Uint64

	endOnce sync.Once
	done    chan struct{} // closed when the session has ended its work: the file is here, failed or closed
	err     error         // why, once done is closed (nil: the file is here and verified)
}

func newBlockState(z int) *blockState {
	return &blockState{z: z, changed: make(chan struct{}), done: make(chan struct{})}
}

// changeLocked wakes those waiting for a change (b.mu held).
func (b *blockState) changeLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// changes returns a channel closed at the next change.
func (b *blockState) changes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// isFinished reports whether block sbn is decoded. It is read for every
// arriving symbol, so it reads an atomic copy of the finished set.
func (b *blockState) isFinished(sbn uint8) bool {
	return b.bits[sbn>>6].Load()&(1<<(sbn&63)) != 0
}

// isComplete reports whether the node has the whole file.
func (b *blockState) isComplete() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.complete
}

// finishedSet returns the blocks this node has.
func (b *blockState) finishedSet() protocol.BlockSet {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.finished
}

// snapshot returns the finished set and whether the file is complete.
func (b *blockState) snapshot() (protocol.BlockSet, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.finished, b.complete
}

// wanted is the set to report to parents: the blocks decoded, and those
// that hold enough symbols to decode. A relay does not need a parent's
// symbols of a block it has: it generates fresh ones for its children from
// its own copy.
func (b *blockState) wanted() protocol.BlockSet {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.finished
	for i := range set {
		set[i] |= b.pending[i]
	}
	return set
}

// setPending marks or clears "enough symbols held" for block sbn.
func (b *blockState) setPending(sbn int, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.pending.Add(uint8(sbn))
	} else {
		b.pending.Remove(uint8(sbn))
	}
	b.changeLocked()
}

// markFinished records block sbn as decoded and verified at time at (a
// block found on disk at start counts as decoded long ago) and returns the
// finished set.
func (b *blockState) markFinished(sbn int, at time.Time) protocol.BlockSet {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finished.Add(uint8(sbn))
	b.bits[sbn>>6].Or(1 << (sbn & 63))
	b.pending.Remove(uint8(sbn))
	b.at[sbn] = at
	b.changeLocked()
	return b.finished
}

// markComplete records that the node has every block.
func (b *blockState) markComplete() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := 0; i < b.z; i++ {
		b.finished.Add(uint8(i))
		b.bits[i>>6].Or(1 << (i & 63))
	}
	b.complete = true
	b.changeLocked()
}

// servable returns the blocks the generator may serve now (every block of
// a complete node, otherwise those decoded at least grace ago) and those
// decoded more recently.
func (b *blockState) servable(grace time.Duration) (mine, fresh protocol.BlockSet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.complete {
		return b.finished, fresh
	}
	now := time.Now()
	for i := 0; i < b.z; i++ {
		switch at := b.at[i]; {
		case at.IsZero():
		case now.Sub(at) >= grace:
			mine.Add(uint8(i))
		default:
			fresh.Add(uint8(i))
		}
	}
	return mine, fresh
}

// end marks the session's work as over with err (nil: the file is here);
// only the first call counts, and it reports whether it was the first.
func (b *blockState) end(err error) bool {
	first := false
	b.endOnce.Do(func() {
		first = true
		b.mu.Lock()
		b.err = err
		b.changeLocked()
		b.mu.Unlock()
		close(b.done)
	})
	return first
}

// ended reports whether end was called, and with what.
func (b *blockState) ended() (bool, error) {
	select {
	case <-b.done:
		b.mu.Lock()
		defer b.mu.Unlock()
		return true, b.err
	default:
		return false, nil
	}
}

// wait blocks until end is called, or ctx ends.
func (b *blockState) wait(ctx context.Context) error {
	select {
	case <-b.done:
		_, err := b.ended()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
