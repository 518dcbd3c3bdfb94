// Package swarm runs a whole romap2p swarm inside one process: a source and
// any number of receivers, each a real node with its own libp2p host on
// loopback TCP. Every ordered pair of hosts gets its own rate and every host
// an access link whose uplink and downlink caps are shared by all of its
// connections (see internal/shaper), so a rate matrix such as the paper's
// Table I can be replayed on one machine.
//
// Run is the whole experiment in one call; Start, Wait and Close split it so
// that a test can act on a running swarm (for example Kill a relay to check
// failover). Results compare what every receiver achieved with what the
// centralised widest-path tree and direct unicast from the source would
// give it.
package swarm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/shaper"
	"github.com/romap2p/romap2p/node"
	"github.com/romap2p/romap2p/treebuild"
)

var log = logging.Logger("roma/swarm")

// Config describes one swarm run.
type Config struct {
	// Matrix holds the pair rates and access caps in bytes/s; its hosts
	// are the swarm's members. A pair the matrix does not measure runs at
	// the sender's uplink cap.
	Matrix *treebuild.RateMatrix
	// Source names the host that adds the file; every other host fetches it.
	Source string
	// Size is the size of the random file in bytes.
	Size int64
	// Stripes is the number of stripes (default 1: a single tree).
	Stripes int
	// Uplink and Downlink are the access caps in bytes/s of hosts the matrix
	// gives no cap of their own; 0 leaves such hosts uncapped.
	Uplink, Downlink float64
	// Stagger spaces the joins: the k-th receiver in matrix order (k = 0,
	// 1, ...) starts fetching k*Stagger after the first. JoinAt overrides
	// the join time of the receivers it names.
	Stagger time.Duration
	JoinAt  map[string]time.Duration
	// Parents fixes the tree: receiver name -> parent name. Receivers it
	// does not name choose their parents themselves, starting from the
	// source's address and learning the rest by peer exchange.
	Parents map[string]string
	// NodeOptions are added to every node's options (for example
	// node.WithBackPressure or node.WithMaxChildren).
	NodeOptions []node.Option
	// Dir is the working directory for the input and output files. When
	// empty, a temporary directory is used and removed by Close.
	Dir string
	// Seed selects the content of the random file.
	Seed uint64

	// wrap, when set, wraps every shaped symbols stream: the sending
	// host's name, the receiving peer and the shaped writer. Tests in this
	// package use it to put a saboteur in a host's place; nothing outside
	// the package can reach it.
	wrap func(from string, to peer.ID, w io.Writer) io.Writer
}

// Option configures Start and Run.
type Option func(*options)

type options struct {
	onTick func(Snapshot)
	tick   time.Duration
}

// OnTick calls f with a snapshot of the swarm at every tick while it runs,
// and once more when every receiver has finished. f runs on the swarm's
// polling goroutine and should return quickly.
func OnTick(f func(Snapshot)) Option { return func(o *options) { o.onTick = f } }

// TickInterval sets how often OnTick's function is called (default 250 ms).
func TickInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.tick = d
		}
	}
}

// pollInterval is how often the swarm reads every node's progress to learn
// who feeds whom; it is shorter than the tick so that short-lived parents
// are seen too.
const pollInterval = 100 * time.Millisecond

// Swarm is a running swarm. Its methods are safe for concurrent use.
type Swarm struct {
	cfg    Config
	opts   options
	m      *treebuild.RateMatrix // with default caps applied
	src    int
	nw     *shaper.Network
	dir    string
	ownDir bool
	input  string
	sum    [32]byte
	cid    cid.Cid

	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time

	idMu sync.RWMutex
	ids  map[peer.ID]string

	members []*member // every host, in matrix order
	byName  map[string]*member

	mu        sync.Mutex // guards the mutable fields of every member
	remaining int        // receivers not finished yet
	allDone   chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// member is one host of the swarm.
type member struct {
	name    string
	idx     int
	node    *node.Node
	out     string
	joinAt  time.Duration
	source  bool
	getCtx  context.Context
	stopGet context.CancelFunc

	// Guarded by Swarm.mu.
	joined, finished, killed, ok bool
	joinedAt, doneAt             time.Time
	err                          error
	parent                       string             // current first upstream
	fresh                        map[linkKey]uint64 // new symbols per upstream link
	last                         node.Progress
	hasLast                      bool
}

// linkKey identifies one upstream subscription.
type linkKey struct {
	name   string
	stripe int
	since  time.Time
	probe  bool
}

// Start builds the network, starts one node per host of the matrix, writes
// a random file of cfg.Size bytes at the source, adds it there, and starts
// every receiver's download at its join time. ctx bounds the whole life of
// the swarm: when it ends, every download stops.
func Start(ctx context.Context, cfg Config, opts ...Option) (*Swarm, error) {
	o := options{tick: 250 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Stripes == 0 {
		cfg.Stripes = 1
	}
	m, err := withDefaultCaps(cfg.Matrix, cfg.Uplink, cfg.Downlink)
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	src, _ := m.Index(cfg.Source)
	s := &Swarm{
		cfg:     cfg,
		opts:    o,
		m:       m,
		src:     src,
		nw:      buildNetwork(m),
		ids:     make(map[peer.ID]string),
		byName:  make(map[string]*member),
		allDone: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	if err := s.startNodes(ctx); err != nil {
		return nil, err
	}
	s.input = filepath.Join(s.dir, "input.bin")
	if s.sum, err = writeRandom(s.input, cfg.Size, cfg.Seed); err != nil {
		return nil, err
	}
	srcNode := s.members[src].node
	if s.cid, err = srcNode.Add(ctx, s.input, node.Name("swarm.bin")); err != nil {
		return nil, fmt.Errorf("swarm: add at %s: %w", cfg.Source, err)
	}
	s.start = time.Now()
	s.remaining = len(s.members) - 1
	for _, mb := range s.members {
		if mb.source {
			continue
		}
		s.wg.Add(1)
		go s.fetch(mb, srcNode.AddrInfo())
	}
	s.wg.Add(1)
	go s.poll()
	ok = true
	return s, nil
}

// Run starts a swarm, waits until every receiver has finished or ctx ends,
// and closes it. On ctx's end it returns the partial result together with
// an error wrapping ctx.Err().
func Run(ctx context.Context, cfg Config, opts ...Option) (*Result, error) {
	s, err := Start(ctx, cfg, opts...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Wait()
}

// check validates a configuration.
func (c *Config) check() error {
	if c.Matrix == nil {
		return errors.New("swarm: no rate matrix")
	}
	if c.Matrix.Len() < 2 {
		return errors.New("swarm: the matrix needs a source and at least one receiver")
	}
	if _, ok := c.Matrix.Index(c.Source); !ok {
		return fmt.Errorf("swarm: source %q is not a host of the matrix", c.Source)
	}
	if c.Size <= 0 {
		return fmt.Errorf("swarm: size %d is not positive", c.Size)
	}
	if c.Stripes < 0 {
		return fmt.Errorf("swarm: stripes %d is negative", c.Stripes)
	}
	if c.Uplink < 0 || c.Downlink < 0 {
		return errors.New("swarm: negative access cap")
	}
	if c.Stagger < 0 {
		return fmt.Errorf("swarm: negative stagger %v", c.Stagger)
	}
	for name, at := range c.JoinAt {
		if _, ok := c.Matrix.Index(name); !ok || name == c.Source {
			return fmt.Errorf("swarm: join time for %q, which is not a receiver", name)
		}
		if at < 0 {
			return fmt.Errorf("swarm: negative join time for %q", name)
		}
	}
	for child, parent := range c.Parents {
		if _, ok := c.Matrix.Index(child); !ok || child == c.Source {
			return fmt.Errorf("swarm: parent given for %q, which is not a receiver", child)
		}
		if _, ok := c.Matrix.Index(parent); !ok || parent == child {
			return fmt.Errorf("swarm: %q cannot be the parent of %q", parent, child)
		}
	}
	return nil
}

// buildNetwork turns a matrix into a shaped network: measured pairs get
// their rate, every host its access caps. Unmeasured pairs stay unlimited
// themselves, so they run at whatever the sender's uplink allows.
func buildNetwork(m *treebuild.RateMatrix) *shaper.Network {
	nw := shaper.NewNetwork()
	for i := range m.Len() {
		nw.SetUplink(m.Name(i), m.Uplink(i))
		nw.SetDownlink(m.Name(i), m.Downlink(i))
		for j := range m.Len() {
			if r, ok := m.PairRate(i, j); ok && i != j {
				nw.SetPairRate(m.Name(i), m.Name(j), r)
			}
		}
	}
	return nw
}

func (s *Swarm) prepareDir() error {
	if s.cfg.Dir != "" {
		s.dir = s.cfg.Dir
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return fmt.Errorf("swarm: %w", err)
		}
		return nil
	}
	d, err := os.MkdirTemp("", "romap2p-swarm-")
	if err != nil {
		return fmt.Errorf("swarm: %w", err)
	}
	s.dir, s.ownDir = d, true
	return nil
}

// startNodes starts one node per host on loopback.
func (s *Swarm) startNodes(ctx context.Context) error {
	scratch := filepath.Join(s.dir, "scratch")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return fmt.Errorf("swarm: %w", err)
	}
	joinRank := 0
	for i, name := range s.m.Hosts() {
		opts := []node.Option{
			node.WithHostOptions(node.ListenAddrs("/ip4/127.0.0.1/tcp/0")),
			node.WithoutRouting(),
			node.WithStripes(s.cfg.Stripes),
			node.WithScratchDir(scratch),
			node.WithShaper(s.shape),
		}
		n, err := node.New(ctx, append(opts, s.cfg.NodeOptions...)...)
		if err != nil {
			return fmt.Errorf("swarm: start node %s: %w", name, err)
		}
		mb := &member{
			name:   name,
			idx:    i,
			node:   n,
			source: i == s.src,
			out:    filepath.Join(s.dir, fmt.Sprintf("%02d-%s.out", i, fileSafe(name))),
			fresh:  make(map[linkKey]uint64),
		}
		if !mb.source {
			mb.joinAt = time.Duration(joinRank) * s.cfg.Stagger
			if at, ok := s.cfg.JoinAt[name]; ok {
				mb.joinAt = at
			}
			joinRank++
			mb.getCtx, mb.stopGet = context.WithCancel(s.ctx)
		}
		s.members = append(s.members, mb)
		s.byName[name] = mb
		s.idMu.Lock()
		s.ids[n.Host().ID()] = name
		s.idMu.Unlock()
	}
	return nil
}

// shape is every node's shaper: it routes a symbols stream through the
// network's buckets for the pair of hosts.
func (s *Swarm) shape(from, to peer.ID, w io.Writer) io.Writer {
	s.idMu.RLock()
	f, okf := s.ids[from]
	t, okt := s.ids[to]
	s.idMu.RUnlock()
	if !okf || !okt {
		log.Warnw("unshaped stream between unknown peers", "from", from, "to", to)
		return w
	}
	w = s.nw.Writer(f, t, w)
	if s.cfg.wrap != nil {
		w = s.cfg.wrap(f, to, w)
	}
	return w
}

// fetch runs one receiver: it waits for the join time, downloads, and
// verifies the output.
func (s *Swarm) fetch(mb *member, src peer.AddrInfo) {
	defer s.wg.Done()
	var err error
	select {
	case <-time.After(time.Until(s.start.Add(mb.joinAt))):
		s.mu.Lock()
		mb.joined, mb.joinedAt = true, time.Now()
		s.mu.Unlock()
		var opts []node.GetOption
		if p, ok := s.cfg.Parents[mb.name]; ok {
			opts = append(opts, node.WithParents(s.byName[p].node.AddrInfo()))
		}
		opts = append(opts, node.WithPeers(src))
		err = mb.node.Get(mb.getCtx, s.cid, mb.out, opts...)
	case <-mb.getCtx.Done():
		err = fmt.Errorf("not joined: %w", mb.getCtx.Err())
	}
	doneAt := time.Now()
	var ok bool
	if err == nil {
		var sum [32]byte
		if sum, err = hashFile(mb.out); err == nil {
			ok = sum == s.sum
			if !ok {
				err = errors.New("output differs from the input")
			}
		}
	}
	p, hasP := mb.node.Progress(s.cid)
	s.mu.Lock()
	mb.finished, mb.doneAt, mb.ok, mb.err = true, doneAt, ok, err
	if hasP {
		// The last sample: what the upstreams delivered since the
		// previous poll counts too.
		s.record(mb, p)
	}
	s.remaining--
	if s.remaining == 0 {
		close(s.allDone)
	}
	s.mu.Unlock()
	if err != nil {
		log.Infow("receiver failed", "peer", mb.name, "err", err)
	}
}

// poll reads every node's progress until all receivers are done, learning
// who feeds whom, and calls the tick function.
func (s *Swarm) poll() {
	defer s.wg.Done()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	lastTick := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.allDone:
			if s.opts.onTick != nil {
				s.opts.onTick(s.Snapshot())
			}
			return
		case now := <-t.C:
			s.observe()
			if s.opts.onTick != nil && now.Sub(lastTick) >= s.opts.tick-pollInterval/2 {
				lastTick = now
				s.opts.onTick(s.Snapshot())
			}
		}
	}
}

// observe records the progress of every receiver that is fetching.
func (s *Swarm) observe() {
	for _, mb := range s.members {
		if mb.source {
			continue
		}
		s.mu.Lock()
		active := mb.joined && !mb.finished && !mb.killed
		s.mu.Unlock()
		if !active {
			continue
		}
		p, ok := mb.node.Progress(s.cid)
		if !ok {
			continue
		}
		s.mu.Lock()
		s.record(mb, p)
		s.mu.Unlock()
	}
}

// record keeps a progress sample of mb: its counters and how many new
// symbols each upstream link has delivered so far. Called with s.mu held.
func (s *Swarm) record(mb *member, p node.Progress) {
	mb.last, mb.hasLast = p, true
	first := ""
	for _, u := range p.Upstreams {
		name := s.nameOf(u.Peer)
		if first == "" && !u.Probe {
			first = name
		}
		k := linkKey{name, u.Stripe, u.Since, u.Probe}
		mb.fresh[k] = max(mb.fresh[k], u.Fresh)
	}
	if first != "" {
		mb.parent = first
	}
}

// nameOf returns the host name of a peer, or its ID when it is not a member.
func (s *Swarm) nameOf(id peer.ID) string {
	s.idMu.RLock()
	defer s.idMu.RUnlock()
	if n, ok := s.ids[id]; ok {
		return n
	}
	return id.String()
}

// Node returns the node of the named host, or nil.
func (s *Swarm) Node(name string) *node.Node {
	if mb, ok := s.byName[name]; ok {
		return mb.node
	}
	return nil
}

// CID returns the CID of the file the swarm distributes.
func (s *Swarm) CID() cid.Cid { return s.cid }

// Network returns the emulated network, for its byte counters or to change
// rates while the swarm runs.
func (s *Swarm) Network() *shaper.Network { return s.nw }

// Kill stops the named host at once, as a crash would: its node closes, and
// its download, if any, ends unfinished. Its children must find new parents.
func (s *Swarm) Kill(name string) error {
	mb, ok := s.byName[name]
	if !ok {
		return fmt.Errorf("swarm: no host %q", name)
	}
	s.mu.Lock()
	if mb.killed {
		s.mu.Unlock()
		return nil
	}
	mb.killed = true
	s.mu.Unlock()
	if mb.stopGet != nil {
		mb.stopGet()
	}
	if err := mb.node.Close(); err != nil {
		return fmt.Errorf("swarm: kill %s: %w", name, err)
	}
	return nil
}

// Wait blocks until every receiver has finished (or was killed), or the
// swarm's context ends, and returns the result. When the context ended
// first, the unfinished downloads are stopped and the partial result comes
// with an error wrapping the context's error.
func (s *Swarm) Wait() (*Result, error) {
	var err error
	select {
	case <-s.allDone:
	case <-s.ctx.Done():
		err = fmt.Errorf("swarm: not every receiver finished: %w", s.ctx.Err())
	}
	s.cancel()
	s.wg.Wait()
	return s.result(), err
}

// Close stops every node and removes the working directory if Start made
// it. It is safe to call more than once.
func (s *Swarm) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		for _, mb := range s.members {
			if err := mb.node.Close(); err != nil {
				log.Debugw("close node", "peer", mb.name, "err", err)
			}
		}
		s.wg.Wait()
		if s.ownDir {
			if err := os.RemoveAll(s.dir); err != nil {
				log.Warnw("remove work directory", "dir", s.dir, "err", err)
			}
		}
	})
}

// writeRandom writes size pseudo-random bytes drawn from seed to path and
// returns their sha256.
func writeRandom(path string, size int64, seed uint64) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Create(path)
	if err != nil {
		return sum, fmt.Errorf("swarm: create input: %w", err)
	}
	var key [32]byte
	for i := range 4 {
		for j := range 8 {
			key[8*i+j] = byte((seed + uint64(i)*0x9e3779b97f4a7c15) >> (8 * j))
		}
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	if _, err := io.CopyN(w, rand.NewChaCha8(key), size); err != nil {
		f.Close()
		return sum, fmt.Errorf("swarm: write input: %w", err)
	}
	if err := f.Close(); err != nil {
		return sum, fmt.Errorf("swarm: write input: %w", err)
	}
	h.Sum(sum[:0])
	return sum, nil
}

// hashFile returns the sha256 of a file's content.
func hashFile(path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, fmt.Errorf("verify output: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("verify output %s: %w", path, err)
	}
	h.Sum(sum[:0])
	return sum, nil
}

// fileSafe makes a host name usable as part of a file name.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < ' ' {
			return '_'
		}
		return r
	}, name)
}
