// Package shaper emulates, inside one process, a network in which every
// ordered pair of hosts has its own transfer rate and every host has an access
// link with an uplink and a downlink cap.
//
// Bytes travel through wrappers obtained from a Network (Writer, Reader, Conn,
// Dialer). Before bytes pass, the wrapper takes tokens from three buckets: the
// pair's own bucket, the sender's uplink bucket and the receiver's downlink
// bucket. An uplink bucket is shared by all flows leaving a host and a
// downlink bucket by all flows entering it, as on a real access link.
//
// Tokens are bought in chunks (16 KiB by default), first come first served,
// and a wrapper keeps what it does not use at once for its next call. So
// backlogged flows that share a bucket take turns chunk by chunk and get
// equal shares in bytes, whatever the sizes of their writes; a flow that
// needs less leaves the rest to the others (less at most the one chunk of
// unused credit it may hold). A bucket holds at most max(32 KiB, 20 ms of its
// rate), so rates hold over short windows too.
//
// Nothing runs in the background: a waiting writer sleeps for exactly the
// time its bucket needs to earn the tokens it took, and Close wakes it. Rate
// changes apply to purchases made after them; a wait already begun runs out.
package shaper

import (
	"fmt"
	"math"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for a Network built without options.
const (
	// DefaultChunkSize is how many bytes a flow buys from its buckets at a
	// time, and so the size of one turn when flows share a bucket.
	DefaultChunkSize = 16 << 10
	// DefaultMinBurst is the smallest burst a limited bucket allows.
	DefaultMinBurst = 32 << 10
	// DefaultBurstWindow is how much time at its rate a bucket may save up,
	// when that is more than DefaultMinBurst.
	DefaultBurstWindow = 20 * time.Millisecond
)

// ErrClosed is returned by a shaped writer, reader or connection after it
// was closed, including to a call that was waiting for tokens. It matches
// net.ErrClosed under errors.Is.
var ErrClosed = fmt.Errorf("shaper: %w", net.ErrClosed)

// Option configures a Network.
type Option func(*Network)

// WithChunkSize sets how many bytes a flow buys from its buckets at a time
// (default DefaultChunkSize). Non-positive values keep the default.
func WithChunkSize(n int) Option {
	return func(nw *Network) {
		if n > 0 {
			nw.chunk = n
		}
	}
}

// WithBurst sets the burst of every limited bucket to max(minBytes, window
// at the bucket's rate) (default DefaultMinBurst and DefaultBurstWindow).
// Negative values keep the defaults.
func WithBurst(minBytes int, window time.Duration) Option {
	return func(nw *Network) {
		nw.minBurst, nw.window = DefaultMinBurst, DefaultBurstWindow
		if minBytes >= 0 {
			nw.minBurst = minBytes
		}
		if window >= 0 {
			nw.window = window
		}
		nw.burstSet = true
	}
}

// Network is a set of named hosts with per-pair rates and per-host access
// link caps. Hosts come into being when first named. The zero Network is
// ready to use and unlimited; all methods are safe for concurrent use.
type Network struct {
	chunk    int           // 0 means DefaultChunkSize
	minBurst int           // used when burstSet
	window   time.Duration // used when burstSet
	burstSet bool

	mu    sync.Mutex // guards the maps and every bucket
	hosts map[string]*host
	pairs map[pairKey]*pair
}

type pairKey struct{ from, to string }

type host struct {
	up, down             bucket
	uploaded, downloaded atomic.Int64
}

// pair is the directed link from one host to another.
type pair struct {
	from, to *host
	b        bucket
	bytes    atomic.Int64
}

// HostStats counts the bytes a host has sent and received through the
// Network's wrappers.
type HostStats struct {
	Uploaded   int64 // bytes sent by the host
	Downloaded int64 // bytes received by the host
}

// NewNetwork returns an empty, unlimited Network.
func NewNetwork(opts ...Option) *Network {
	nw := new(Network)
	for _, o := range opts {
		o(nw)
	}
	return nw
}

// chunkSize returns the grant size; the zero Network uses the default.
func (nw *Network) chunkSize() int {
	if nw.chunk <= 0 {
		return DefaultChunkSize
	}
	return nw.chunk
}

// burstFor returns the burst of a bucket limited to rate. Called with mu held.
func (nw *Network) burstFor(rate float64) float64 {
	minBurst, window := DefaultMinBurst, DefaultBurstWindow
	if nw.burstSet {
		minBurst, window = nw.minBurst, nw.window
	}
	return math.Max(float64(minBurst), rate*window.Seconds())
}

// SetPairRate limits the flow from host from to host to to bytesPerSec bytes
// per second. Zero (or any value that is not a positive finite number) makes
// the pair itself unlimited. The change applies to grants made after it.
func (nw *Network) SetPairRate(from, to string, bytesPerSec float64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.setRate(&nw.pairLocked(from, to).b, bytesPerSec)
}

// SetUplink caps the total rate at which host sends, to all destinations
// together, at bytesPerSec bytes per second (0 = unlimited).
func (nw *Network) SetUplink(host string, bytesPerSec float64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.setRate(&nw.hostLocked(host).up, bytesPerSec)
}

// SetDownlink caps the total rate at which host receives, from all sources
// together, at bytesPerSec bytes per second (0 = unlimited).
func (nw *Network) SetDownlink(host string, bytesPerSec float64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.setRate(&nw.hostLocked(host).down, bytesPerSec)
}

func (nw *Network) setRate(b *bucket, bytesPerSec float64) {
	if !(bytesPerSec > 0) || math.IsInf(bytesPerSec, 1) {
		bytesPerSec = 0
	}
	b.set(bytesPerSec, nw.burstFor(bytesPerSec), time.Now())
}

func (nw *Network) hostLocked(name string) *host {
	h, ok := nw.hosts[name]
	if !ok {
		if nw.hosts == nil {
			nw.hosts = make(map[string]*host)
		}
		h = new(host)
		nw.hosts[name] = h
	}
	return h
}

func (nw *Network) pairLocked(from, to string) *pair {
	k := pairKey{from, to}
	p, ok := nw.pairs[k]
	if !ok {
		if nw.pairs == nil {
			nw.pairs = make(map[pairKey]*pair)
		}
		p = &pair{from: nw.hostLocked(from), to: nw.hostLocked(to)}
		nw.pairs[k] = p
	}
	return p
}

// link returns the pair from → to, creating it and its hosts if needed.
func (nw *Network) link(from, to string) *pair {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.pairLocked(from, to)
}

// Hosts returns the names of all hosts known to the Network, sorted.
func (nw *Network) Hosts() []string {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	names := make([]string, 0, len(nw.hosts))
	for name := range nw.hosts {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// HostStats returns the bytes host has sent and received so far.
func (nw *Network) HostStats(host string) HostStats {
	nw.mu.Lock()
	h, ok := nw.hosts[host]
	nw.mu.Unlock()
	if !ok {
		return HostStats{}
	}
	return HostStats{Uploaded: h.uploaded.Load(), Downloaded: h.downloaded.Load()}
}

// PairBytes returns the bytes sent so far from host from to host to.
func (nw *Network) PairBytes(from, to string) int64 {
	nw.mu.Lock()
	p, ok := nw.pairs[pairKey{from, to}]
	nw.mu.Unlock()
	if !ok {
		return 0
	}
	return p.bytes.Load()
}

// count records n bytes as sent over p.
func (p *pair) count(n int) {
	if n <= 0 {
		return
	}
	p.bytes.Add(int64(n))
	p.from.uploaded.Add(int64(n))
	p.to.downloaded.Add(int64(n))
}

// acquire returns how many of want bytes may pass on p now, waiting as long
// as p's buckets require. When p and both access links are unlimited all of
// want passes at once. Otherwise bytes are paid for in whole chunks: a chunk
// is bought when the wrapper's credit (wt.credit) falls short of want, and
// the part of it not used now stays as credit for the wrapper's next calls.
// Every flow thus queues for the same amount per turn, whatever the size of
// its writes or reads, which makes shares fair in bytes. The grant is at
// most want and at most credit plus one chunk. acquire fails only when wt is
// released while waiting.
func (nw *Network) acquire(p *pair, want int, wt *waiter) (int, error) {
	if !p.limited() {
		wt.credit = 0
		return want, nil // a rate set concurrently applies from the next call
	}
	if wt.credit < want {
		chunk := nw.chunkSize()
		if err := nw.buy(p, chunk, wt); err != nil {
			return 0, err
		}
		wt.credit += chunk
	}
	g := min(want, wt.credit)
	wt.credit -= g
	return g, nil
}

// buy takes n tokens from each of p's buckets, waiting as long as they
// require. When wt is released first it gives the tokens back and fails.
//
// The buckets are taken one at a time, the one with the longest wait first:
// the wait that binds is spent in the queue of the bucket that causes it,
// and the other buckets are charged only once that wait is over, close to
// the moment the bytes really pass, so that a flow held back by its own pair
// or by the far end does not reserve a shared link it cannot use yet.
func (nw *Network) buy(p *pair, n int, wt *waiter) error {
	buckets := [3]*bucket{&p.b, &p.from.up, &p.to.down}
	var taken [3]bool
	for {
		nw.mu.Lock()
		now := time.Now()
		worst, wait := -1, time.Duration(0)
		for i, b := range buckets {
			if taken[i] {
				continue
			}
			b.refill(now)
			if d := b.delay(n); d > wait {
				worst, wait = i, d
			}
		}
		if worst < 0 {
			for i, b := range buckets {
				if !taken[i] {
					b.take(n)
				}
			}
			nw.mu.Unlock()
			return nil
		}
		buckets[worst].take(n)
		taken[worst] = true
		nw.mu.Unlock()

		if err := wt.sleep(wait); err != nil {
			nw.mu.Lock()
			for i, b := range buckets {
				if taken[i] {
					b.give(n)
				}
			}
			nw.mu.Unlock()
			return err
		}
	}
}

// refund gives wt's unused credit back to p's buckets.
func (nw *Network) refund(p *pair, wt *waiter) {
	if wt.credit == 0 {
		return
	}
	nw.mu.Lock()
	p.b.give(wt.credit)
	p.from.up.give(wt.credit)
	p.to.down.give(wt.credit)
	nw.mu.Unlock()
	wt.credit = 0
}

// limited reports whether any bucket on p restricts it. It takes no lock.
func (p *pair) limited() bool {
	return p.b.on.Load() || p.from.up.on.Load() || p.to.down.on.Load()
}

// waiter waits and holds prepaid credit on behalf of one direction of one
// wrapper. It is used by one goroutine at a time.
type waiter struct {
	done   <-chan struct{}
	timer  *time.Timer
	credit int // bytes paid for and not yet passed
}

// sleep waits for d, or returns ErrClosed as soon as done is closed.
func (w *waiter) sleep(d time.Duration) error {
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C:
		return nil
	case <-w.done:
		w.timer.Stop()
		return ErrClosed
	}
}

// closer releases the waiters of one wrapper once.
type closer struct {
	once sync.Once
	done chan struct{}
}

func newCloser() *closer { return &closer{done: make(chan struct{})} }

// close releases the waiters; it reports whether this call did so.
func (c *closer) close() bool {
	first := false
	c.once.Do(func() {
		close(c.done)
		first = true
	})
	return first
}

func (c *closer) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
