package shaper

import (
	"math"
	"sync/atomic"
	"time"
)

// maxDelay caps a single wait so that absurdly small rates cannot overflow a
// time.Duration. The debt stays in the bucket, so later grants still honour
// the rate.
const maxDelay = 24 * time.Hour

// bucket is a token bucket that may go into debt: a grant always takes its
// tokens at once and the grantee waits until the debt it caused is repaid.
// Grants are therefore served in the order they are taken (FIFO), and no
// goroutine is needed to hand tokens out. The zero bucket is unlimited.
// Callers hold the Network's mutex, except for reading on.
type bucket struct {
	on     atomic.Bool // mirrors limited() for lock-free fast paths
	rate   float64     // bytes per second; 0 means unlimited
	burst  float64     // largest number of tokens the bucket holds
	tokens float64     // may be negative (debt)
	last   time.Time
}

// limited reports whether the bucket restricts anything.
func (b *bucket) limited() bool { return b.rate > 0 }

// set changes the rate and burst. Tokens earned at the old rate up to now are
// kept; a bucket that was unlimited starts full.
func (b *bucket) set(rate, burst float64, now time.Time) {
	if b.limited() {
		b.refill(now)
	} else {
		b.tokens = burst
		b.last = now
	}
	b.rate, b.burst = rate, burst
	b.on.Store(b.limited())
	if b.tokens > burst {
		b.tokens = burst
	}
}

// refill adds the tokens earned since the last refill.
func (b *bucket) refill(now time.Time) {
	if !b.limited() {
		return
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = math.Min(b.burst, b.tokens+b.rate*dt.Seconds())
		b.last = now
	}
}

// delay returns how long a grant of n bytes taken now would have to wait.
// The bucket must have been refilled to the current time.
func (b *bucket) delay(n int) time.Duration {
	if !b.limited() || b.tokens >= float64(n) {
		return 0
	}
	d := math.Ceil((float64(n) - b.tokens) / b.rate * float64(time.Second))
	if d > float64(maxDelay) {
		return maxDelay
	}
	return time.Duration(d)
}

// take removes n tokens, possibly going into debt.
func (b *bucket) take(n int) {
	if b.limited() {
		b.tokens -= float64(n)
	}
}

// give returns n tokens taken for bytes that were never sent.
func (b *bucket) give(n int) {
	if b.limited() {
		b.tokens = math.Min(b.burst, b.tokens+float64(n))
	}
}
