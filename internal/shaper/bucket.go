// This bucket is ours rather than golang.org/x/time/rate's Limiter, which was
// tried in its place (v0.15.0) and falls short in three ways:
//
//   - Tokens given back: Network.refund returns unused chunk credit after its
//     wait is over, and a closed writer returns everything it took. A
//     Reservation's CancelAt restores nothing once its time to act has passed
//     and, before that, only what no later reservation has claimed; only a
//     negative n in AllowN/ReserveN adds tokens as give does, which the
//     package does not document (golang/go#54082).
//   - Grants above the burst: ReserveN refuses n > burst, so a bucket with a
//     burst below the chunk (WithBurst(0, 0)) needs its burst raised and
//     lowered around each grant; a burst sized to the chunk instead would let
//     it save up more than configured.
//   - Waiting for the longest of several buckets needs each one's delay for n
//     without taking: the Limiter has no such call, so delay's arithmetic
//     stays ours on top of TokensAt, and bucket.go does not shrink.
//
// The Limiter-backed version passed this package's tests but, with its own
// mutex under the Network's, took 1.8x the time per limited grant
// (BenchmarkWriteLimitedNoWait, median of 5: 125 -> 229 ns) and 1.3x under
// contention (BenchmarkWriteSharedUplinkParallel: 123 -> 161 ns).

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
