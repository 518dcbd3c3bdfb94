package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/romap2p/romap2p/protocol"
)

// DefaultCapacity is the ring's default payload capacity in bytes (the
// paper's 1 MiB relay buffer).
const DefaultCapacity = 1 << 20

// DefaultBatchBytes is the default largest single write a Writer issues.
const DefaultBatchBytes = 64 << 10

// MaxSymbolSize bounds the symbol size a ring accepts.
const MaxSymbolSize = 1 << 20

// minSlots is the fewest symbols a ring holds, whatever its capacity.
const minSlots = 8

// ErrClosed is returned by operations on a closed ring, consumer or writer.
var ErrClosed = errors.New("relay: closed")

// Option configures a Ring.
type Option func(*config)

type config struct {
	capacity     int
	batchBytes   int
	backPressure bool
}

// WithCapacity sets the ring's capacity in payload bytes; the ring holds at
// least capacity/T symbols (and never fewer than a handful).
func WithCapacity(bytes int) Option { return func(c *config) { c.capacity = bytes } }

// WithBatchBytes sets the largest write a Writer issues, in bytes. Frames are
// stored in chunks of this size, so it is also the unit in which a lagging
// consumer skips and in which the producer recycles memory.
func WithBatchBytes(bytes int) Option { return func(c *config) { c.batchBytes = bytes } }

// WithBackPressure selects the store-and-forward baseline: every consumer is
// lossless and the producer waits until the slowest consumer has taken the
// symbols it is about to overwrite.
func WithBackPressure() Option { return func(c *config) { c.backPressure = true } }

// chunk is a run of frame slots in one allocation. A consumer pins the chunk
// it is reading from; the producer never writes into a pinned chunk but swaps
// in a spare instead, so readers need no copy and never see a torn frame.
type chunk struct {
	buf     []byte
	pins    int  // guarded by Ring.mu
	retired bool // guarded by Ring.mu: replaced in the ring while pinned
}

// Ring is a circular buffer of symbol frames (header plus T bytes each) with
// one producer and any number of consumers, each with its own cursor.
//
// Symbols are numbered by a sequence that starts at 0 and grows by one per
// symbol put. The producer never waits for consumers in the default mode;
// only lossless consumers (and every consumer under WithBackPressure) make
// it wait.
type Ring struct {
	t            int // symbol size
	stride       int // frame size: header + t
	per          int // frames per chunk
	nchunk       int
	held         uint64 // symbols guaranteed held: (nchunk-1)*per
	backPressure bool

	// prod serialises producers; it is held from Reserve to Commit/Abort.
	prod     sync.Mutex
	cur      *chunk // chunk being filled; guarded by prod
	reserved bool   // guarded by prod

	mu        sync.Mutex
	chunks    []*chunk // guarded by mu
	free      []*chunk // guarded by mu
	closed    bool     // guarded by mu
	consumers atomic.Pointer[[]*Consumer]

	head     atomic.Uint64 // sequence of the next symbol to commit
	tail     atomic.Uint64 // oldest sequence held; written under mu
	isClosed atomic.Bool
	done     chan struct{}

	// Producers waiting for progress (a lossless consumer to move, or
	// demand for generated symbols) sleep on wakeCh; signalProducer closes
	// it, waking every one of them. Two producers may wait at once (an
	// upstream reader behind the sink, and a generator waiting for demand).
	prodWaiting atomic.Int32
	wakeMu      sync.Mutex
	wakeCh      chan struct{} // guarded by wakeMu

	spares atomic.Uint64 // chunks allocated beyond the initial ring
}

// New returns a ring for symbols of t bytes.
func New(t int, opts ...Option) (*Ring, error) {
	cfg := config{capacity: DefaultCapacity, batchBytes: DefaultBatchBytes}
	for _, o := range opts {
		o(&cfg)
	}
	if t < 1 || t > MaxSymbolSize {
		return nil, fmt.Errorf("relay: symbol size %d out of range [1, %d]", t, MaxSymbolSize)
	}
	if cfg.capacity < 1 {
		return nil, fmt.Errorf("relay: capacity %d must be positive", cfg.capacity)
	}
	if cfg.batchBytes < 1 {
		return nil, fmt.Errorf("relay: batch size %d must be positive", cfg.batchBytes)
	}
	stride := protocol.SymbolHeaderLen + t
	slots := max(cfg.capacity/t, minSlots)
	per := max(1, min(cfg.batchBytes/stride, slots/4))
	nchunk := (slots+per-1)/per + 1
	r := &Ring{
		t:            t,
		stride:       stride,
		per:          per,
		nchunk:       nchunk,
		held:         uint64((nchunk - 1) * per),
		backPressure: cfg.backPressure,
		chunks:       make([]*chunk, nchunk),
		done:         make(chan struct{}),
	}
	for i := range r.chunks {
		r.chunks[i] = r.newChunk()
	}
	empty := []*Consumer{}
	r.consumers.Store(&empty)
	return r, nil
}

func (r *Ring) newChunk() *chunk { return &chunk{buf: make([]byte, r.per*r.stride)} }

// SymbolSize returns T, the payload size of every symbol in the ring.
func (r *Ring) SymbolSize() int { return r.t }

// Slots returns how many symbols the ring is guaranteed to hold: a consumer
// that is fewer than Slots symbols behind the head never skips.
func (r *Ring) Slots() int { return int(r.held) }

// Reserve claims the next slot for the producer and returns its T-byte
// payload buffer, so a symbol can be read from the network straight into the
// ring. The caller must follow with Commit or Abort; until then other
// producers wait. Reserve blocks only while a lossless consumer (or, under
// WithBackPressure, any consumer) still needs the slots being recycled.
func (r *Ring) Reserve(ctx context.Context) ([]byte, error) {
	r.prod.Lock()
	h := r.head.Load()
	if r.isClosed.Load() {
		r.prod.Unlock()
		return nil, ErrClosed
	}
	if r.cur == nil || h%uint64(r.per) == 0 {
		if err := r.enterChunk(ctx, h); err != nil {
			r.prod.Unlock()
			return nil, err
		}
	}
	r.reserved = true
	off := int(h%uint64(r.per)) * r.stride
	return r.cur.buf[off+protocol.SymbolHeaderLen : off+r.stride : off+r.stride], nil
}

// Commit publishes the slot claimed by Reserve as symbol (sbn, esi).
func (r *Ring) Commit(sbn uint8, esi uint32) {
	if !r.reserved {
		panic("relay: Commit without Reserve")
	}
	h := r.head.Load()
	off := int(h%uint64(r.per)) * r.stride
	protocol.PutSymbolHeader(r.cur.buf[off:], sbn, esi)
	r.noteQueued(sbn, esi)
	r.head.Store(h + 1)
	r.reserved = false
	r.wakeConsumers()
	r.prod.Unlock()
}

// Abort gives back the slot claimed by Reserve without publishing it.
func (r *Ring) Abort() {
	if !r.reserved {
		panic("relay: Abort without Reserve")
	}
	r.reserved = false
	r.prod.Unlock()
}

// Put copies one symbol into the ring. data must be exactly T bytes.
func (r *Ring) Put(ctx context.Context, sbn uint8, esi uint32, data []byte) error {
	if len(data) != r.t {
		return fmt.Errorf("relay: put: symbol of %d bytes, ring holds %d", len(data), r.t)
	}
	dst, err := r.Reserve(ctx)
	if err != nil {
		return err
	}
	copy(dst, data)
	r.Commit(sbn, esi)
	return nil
}

// enterChunk prepares the chunk that will hold sequence h (a multiple of
// per): it retires the symbols that chunk held, waiting first for lossless
// consumers that still need them, and swaps in a spare if a reader still
// pins the old memory. Called with prod held.
func (r *Ring) enterChunk(ctx context.Context, h uint64) error {
	var newTail uint64
	if h > r.held {
		newTail = h - r.held
	}
	p := int((h / uint64(r.per)) % uint64(r.nchunk))
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return ErrClosed
		}
		if !r.losslessBehind(newTail) {
			if newTail > r.tail.Load() {
				r.tail.Store(newTail)
			}
			ch := r.chunks[p]
			if ch.pins > 0 {
				ch.retired = true
				ch = r.spare()
				r.chunks[p] = ch
			}
			r.cur = ch
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
		if err := r.waitProgress(ctx, func() bool { return !r.losslessBehind(newTail) }); err != nil {
			return err
		}
	}
}

// losslessBehind reports whether a lossless consumer has not yet taken every
// symbol before seq.
func (r *Ring) losslessBehind(seq uint64) bool {
	for _, c := range *r.consumers.Load() {
		if c.lossless && c.cursor.Load() < seq {
			return true
		}
	}
	return false
}

// spare returns a chunk to swap in for a pinned one. Called with mu held.
func (r *Ring) spare() *chunk {
	if n := len(r.free); n > 0 {
		ch := r.free[n-1]
		r.free = r.free[:n-1]
		return ch
	}
	r.spares.Add(1)
	return r.newChunk()
}

// unpin drops a reader's pin on ch. Called with mu held.
func (r *Ring) unpin(ch *chunk) {
	ch.pins--
	if ch.pins == 0 && ch.retired {
		ch.retired = false
		r.free = append(r.free, ch)
	}
}

// waitProgress blocks the producer until ready reports true, re-checking it
// whenever a consumer moves, joins or leaves.
func (r *Ring) waitProgress(ctx context.Context, ready func() bool) error {
	r.prodWaiting.Add(1)
	defer r.prodWaiting.Add(-1)
	for {
		r.wakeMu.Lock()
		if r.wakeCh == nil {
			r.wakeCh = make(chan struct{})
		}
		wake := r.wakeCh
		r.wakeMu.Unlock()
		if ready() {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return ErrClosed
		}
	}
}

// signalProducer wakes the waiting producers.
func (r *Ring) signalProducer() {
	if r.prodWaiting.Load() > 0 {
		r.wakeMu.Lock()
		if r.wakeCh != nil {
			close(r.wakeCh)
			r.wakeCh = nil
		}
		r.wakeMu.Unlock()
	}
}

// wakeConsumers wakes the consumers sleeping for new symbols.
func (r *Ring) wakeConsumers() {
	for _, c := range *r.consumers.Load() {
		if c.sleeping.Load() && c.sleeping.CompareAndSwap(true, false) {
			c.poke()
		}
	}
}

// Close ends the stream. Consumers still get the symbols they have not yet
// taken, then io.EOF; producers get ErrClosed.
func (r *Ring) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.isClosed.Store(true)
	close(r.done)
	r.mu.Unlock()
	for _, c := range *r.consumers.Load() {
		c.poke()
	}
	return nil
}

// Stats is a snapshot of ring-wide counters.
type Stats struct {
	// SymbolSize is T.
	SymbolSize int
	// Slots is the number of symbols the ring is guaranteed to hold.
	Slots int
	// Put is the number of symbols committed so far (the head sequence).
	Put uint64
	// Oldest is the sequence of the oldest symbol still held.
	Oldest uint64
	// Consumers is the number of live consumers.
	Consumers int
	// SpareChunks counts chunks allocated because readers pinned recycled
	// memory; it stops growing once the spare pool is warm.
	SpareChunks uint64
	// Sent, Skipped, Filtered and Bytes are sums over the live consumers.
	Sent, Skipped, Filtered, Bytes uint64
	// Rate is the sum of the live consumers' rates, in bytes per second.
	Rate float64
}

// Stats returns ring-wide counters. It is safe to call at any time.
func (r *Ring) Stats() Stats {
	s := Stats{
		SymbolSize:  r.t,
		Slots:       int(r.held),
		Put:         r.head.Load(),
		Oldest:      r.tail.Load(),
		SpareChunks: r.spares.Load(),
	}
	cs := *r.consumers.Load()
	s.Consumers = len(cs)
	for _, c := range cs {
		cst := c.Stats()
		s.Sent += cst.Sent
		s.Skipped += cst.Skipped
		s.Filtered += cst.Filtered
		s.Bytes += cst.Bytes
		s.Rate += cst.Rate
	}
	return s
}
