package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/fountain"
	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/relay"
)

// GetOption configures Get.
type GetOption func(*getConfig)

type getConfig struct {
	parents []peer.AddrInfo
	peers   []peer.AddrInfo
	events  []chan<- Event
	writer  io.Writer
	cleanup []func() error
}

// WithParents fixes this receiver's parents instead of choosing them: the
// tree is given explicitly (tests, and operators who know their network).
// With several parents, stripe i goes to parent i mod len(parents).
func WithParents(parents ...peer.AddrInfo) GetOption {
	return func(c *getConfig) { c.parents = append(c.parents, parents...) }
}

// WithPeers adds peers to ask for the content, besides the content router's
// providers and the node's bootstrap peers.
func WithPeers(peers ...peer.AddrInfo) GetOption {
	return func(c *getConfig) { c.peers = append(c.peers, peers...) }
}

// ErrNoPeers means no peer that has the content could be found.
var ErrNoPeers = errors.New("no peer serves this content")

// Get downloads the content named by c into the file out: it finds peers,
// fetches and verifies the manifest, subscribes to parents, decodes and
// verifies every block, relays to its own children while it receives, and
// returns once the whole file is written and verified. The node then keeps
// serving the content as a complete peer until Drop or Close.
//
// If ctx ends first, Get returns its error and leaves a partial download
// (out.part and the spill directory out.romap2p) that a later Get with the
// same out resumes.
func (n *Node) Get(ctx context.Context, c cid.Cid, out string, opts ...GetOption) error {
	if err := protocol.CheckCID(c); err != nil {
		return err
	}
	var cfg getConfig
	for _, o := range opts {
		o(&cfg)
	}
	if s := n.session(c); s != nil {
		return n.follow(ctx, s, &cfg)
	}
	m, mb, err := n.findManifest(ctx, c, &cfg)
	if err != nil {
		for _, f := range cfg.cleanup {
			_ = f()
		}
		cfg.emit(Event{Kind: EventDone, Err: err})
		return err
	}
	s, err := newSession(n, c, m, mb, roleFetcher)
	if err != nil {
		return err
	}
	for _, f := range cfg.cleanup {
		s.addCloser(f)
	}
	cfg.emit(Event{Kind: EventManifest, Progress: s.progress()})
	fs, err := openFetch(s, out, &cfg)
	if err != nil {
		s.close()
		return err
	}
	s.fetch = fs
	if err := n.addSession(s); err != nil {
		s.close()
		return err
	}
	fs.start()
	if have := s.blocks.finishedSet(); have.HasAll(s.numBlocks()) {
		// Everything was already here from an earlier run.
		fs.complete()
	}
	err = n.follow(ctx, s, &cfg)
	if err != nil && ctx.Err() != nil {
		// Interrupted: keep what we have for a resume.
		n.dropSession(s)
		return fmt.Errorf("download interrupted (resume with the same output path): %w", ctx.Err())
	}
	return err
}

// findManifest asks candidate peers for the manifest of c until one answers
// with bytes that match the CID, retrying: in an asynchronous swarm a given
// parent may not have started its own download yet. It retries until ctx
// ends if ctx has a deadline, else for Tuning.ManifestPatience.
func (n *Node) findManifest(ctx context.Context, c cid.Cid, cfg *getConfig) (*protocol.Manifest, []byte, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.cfg.tuning.ManifestPatience)
	}
	delay := 20 * time.Millisecond
	for {
		m, mb, err := n.findManifestOnce(ctx, c, cfg)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return m, mb, err
		}
		log.Debugw("manifest not found yet", "cid", c, "err", err)
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (n *Node) findManifestOnce(ctx context.Context, c cid.Cid, cfg *getConfig) (*protocol.Manifest, []byte, error) {
	tried := map[peer.ID]bool{n.host.ID(): true}
	var lastErr error
	try := func(ai peer.AddrInfo) (*protocol.Manifest, []byte, bool) {
		if tried[ai.ID] {
			return nil, nil, false
		}
		tried[ai.ID] = true
		m, mb, err := n.fetchManifest(ctx, ai, c)
		cfg.emit(Event{Kind: EventAsked, Peer: ai.ID, Err: err})
		if err != nil {
			log.Debugw("manifest", "peer", ai.ID, "err", err)
			lastErr = err
			return nil, nil, false
		}
		return m, mb, true
	}
	for _, list := range [][]peer.AddrInfo{cfg.parents, cfg.peers, n.cfg.bootstrap, n.connectedServers()} {
		for _, ai := range list {
			if m, mb, ok := try(ai); ok {
				return m, mb, nil
			}
		}
	}
	if n.router != nil {
		cfg.emit(Event{Kind: EventLookup})
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for ai := range n.router.FindProvidersAsync(fctx, c, 0) {
			if m, mb, ok := try(ai); ok {
				return m, mb, nil
			}
		}
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	if lastErr != nil {
		return nil, nil, fmt.Errorf("%w: %s (last error: %v)", ErrNoPeers, c, lastErr)
	}
	return nil, nil, fmt.Errorf("%w: %s", ErrNoPeers, c)
}

// maxAskConnected bounds how many connected peers a lookup asks directly.
const maxAskConnected = 32

// connectedServers returns peers the host is connected to that speak
// romap2p's manifest protocol (as identify told): on an embedder's host
// they are asked directly, before (and while) the content router finds
// providers.
func (n *Node) connectedServers() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, p := range n.host.Network().Peers() {
		if len(out) == maxAskConnected {
			break
		}
		if ok, err := n.host.Peerstore().SupportsProtocols(p, protocol.ManifestID); err == nil && len(ok) > 0 {
			out = append(out, peer.AddrInfo{ID: p})
		}
	}
	return out
}

// fetchManifest fetches and verifies the manifest of c from one peer.
func (n *Node) fetchManifest(ctx context.Context, ai peer.AddrInfo, c cid.Cid) (*protocol.Manifest, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.tuning.HandshakeTimeout)
	defer cancel()
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
	st, err := n.newStream(ctx, ai.ID, protocol.ManifestID)
	if err != nil {
		return nil, nil, fmt.Errorf("open manifest stream to %s: %w", ai.ID, err)
	}
	defer st.Close()
	if err := scopeStream(st); err != nil {
		_ = st.Reset()
		return nil, nil, err
	}
	dl, _ := ctx.Deadline()
	_ = st.SetDeadline(dl)
	if err := protocol.WriteRequest(st, c); err != nil {
		return nil, nil, fmt.Errorf("manifest request to %s: %w", ai.ID, err)
	}
	_ = st.CloseWrite()
	m, mb, err := protocol.ReadManifestResponse(st, c)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest from %s: %w", ai.ID, err)
	}
	return m, mb, nil
}

// fetchState is the fetcher of a download: the partial output file, the
// spill store, the resume state, the sink that records every symbol that
// enters the ring and the decoders. Its group runs the sink, the decoders
// and the delayed writes; the session's close waits for it before it
// closes the files.
type fetchState struct {
	s        *session
	g        group
	cfg      *getConfig
	out      string
	partPath string
	stateDir string
	part     *os.File
	reader   *os.File // the partial output opened for reading, for the generator
	spill    *spillStore
	sink     *relay.Consumer
	via      *viaBook // who handed over each unnamed repair symbol

	need []atomic.Int32 // symbols to hold before the next decode attempt, per block

	creditKick chan struct{} // wakes the credit loop (a new upstream)
	decoding   []atomic.Bool
	decodeCh   chan int

	completeOnce sync.Once
	completing   atomic.Bool // set once every block is here: stop finding parents
	stateMu      sync.Mutex  // serialises state saves with the final cleanup
	stateGone    bool
	stateWant    protocol.BlockSet // the finished set to record
	stateSaved   protocol.BlockSet // the finished set last written
	stateAt      time.Time         // when it was written
	statePending bool              // a delayed write is scheduled
	started      time.Time
	doneAt       atomic.Int64 // unix nanoseconds of completion, 0 before
}

// openFetch prepares the output and spill files, resuming an earlier partial
// download of the same content into the same path.
func openFetch(s *session, out string, cfg *getConfig) (*fetchState, error) {
	out = filepath.Clean(out)
	f := &fetchState{
		s:          s,
		cfg:        cfg,
		out:        out,
		partPath:   out + ".part",
		stateDir:   out + ".romap2p",
		need:       make([]atomic.Int32, s.numBlocks()),
		creditKick: make(chan struct{}, 1),
		decoding:   make([]atomic.Bool, s.numBlocks()),
		via:        newViaBook(s.numBlocks()),
		decodeCh:   make(chan int, s.numBlocks()),
		started:    time.Now(),
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	if err := os.MkdirAll(f.stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	done, err := f.loadState()
	if err != nil {
		return nil, err
	}
	part, err := os.OpenFile(f.partPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("partial output: %w", err)
	}
	f.part = part
	if f.reader, err = os.Open(f.partPath); err != nil {
		part.Close()
		return nil, fmt.Errorf("partial output: %w", err)
	}
	if err := part.Truncate(int64(s.manifest.Size)); err != nil {
		part.Close()
		return nil, fmt.Errorf("partial output: %w", err)
	}
	// Blocks recorded as done are checked again: nothing unverified counts.
	for b := 0; b < s.numBlocks(); b++ {
		if done.Has(uint8(b)) && f.verifyWritten(b) {
			// Decoded in an earlier run: served at once.
			s.blocks.markFinished(b, time.Now().Add(-s.tuning().ServeGrace))
		}
	}
	ks := make([]int, s.numBlocks())
	for b := range ks {
		ks[b] = s.oti.BlockSymbols(b)
		f.need[b].Store(int32(ks[b]))
	}
	f.spill, err = openSpill(f.stateDir, s.t, ks, func(b int) bool { return s.isFinished(uint8(b)) }, s.node.cfg.spillMemory)
	if err != nil {
		part.Close()
		return nil, err
	}
	f.spill.mem = s.mem
	if have := s.blocks.finishedSet(); have.Count() > 0 {
		n := have.Count()
		log.Infow("resuming", "cid", s.cid, "blocks done", n, "of", s.numBlocks())
	}
	return f, nil
}

const stateFile = "state"

// loadState reads the finished-block set of an earlier run, if it was for
// the same content.
func (f *fetchState) loadState() (protocol.BlockSet, error) {
	var set protocol.BlockSet
	b, err := os.ReadFile(filepath.Join(f.stateDir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return set, nil
	}
	if err != nil {
		return set, fmt.Errorf("resume state: %w", err)
	}
	want := f.s.cid.Bytes()
	if len(b) != 2+len(want)+len(set) || int(binary.BigEndian.Uint16(b)) != len(want) || string(b[2:2+len(want)]) != string(want) {
		// Another content or a damaged file: start afresh.
		log.Warnw("ignoring resume state of other content", "dir", f.stateDir)
		_ = os.RemoveAll(f.stateDir)
		if err := os.MkdirAll(f.stateDir, 0o755); err != nil {
			return set, fmt.Errorf("state directory: %w", err)
		}
		return set, nil
	}
	copy(set[:], b[2+len(want):])
	return set, nil
}

// saveState records the finished blocks for a resume: at once if the last
// write is StateEvery old, otherwise a little later (and on close).
func (f *fetchState) saveState(set protocol.BlockSet) error {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	if f.stateGone {
		return nil // download complete: nothing left to resume
	}
	f.stateWant = set
	if wait := f.s.tuning().StateEvery - time.Since(f.stateAt); wait > 0 {
		if !f.statePending {
			f.statePending = true
			s := f.s
			f.g.Go(func() {
				t := time.NewTimer(wait)
				defer t.Stop()
				select {
				case <-t.C:
				case <-s.ctx.Done():
					return // close flushes
				}
				if err := f.flushState(); err != nil {
					log.Warnw("resume state", "err", err)
				}
			})
		}
		return nil
	}
	return f.writeStateLocked()
}

// flushState writes the resume state if it changed since the last write.
func (f *fetchState) flushState() error {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	f.statePending = false
	if f.stateGone || f.stateWant == f.stateSaved {
		return nil
	}
	return f.writeStateLocked()
}

// writeStateLocked writes stateWant atomically (temporary file, rename).
func (f *fetchState) writeStateLocked() error {
	set := f.stateWant
	f.stateAt = time.Now()
	c := f.s.cid.Bytes()
	b := make([]byte, 2, 2+len(c)+len(set))
	binary.BigEndian.PutUint16(b, uint16(len(c)))
	b = append(append(b, c...), set[:]...)
	tmp := filepath.Join(f.stateDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(f.stateDir, stateFile)); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	f.stateSaved = set
	return nil
}

// verifyWritten checks a block already in the partial output against its hash.
func (f *fetchState) verifyWritten(b int) bool {
	buf := make([]byte, f.s.oti.BlockLen(b))
	if _, err := f.part.ReadAt(buf, f.s.oti.BlockOffset(b)); err != nil {
		return false
	}
	return f.s.manifest.SumBlock(buf) == f.s.manifest.BlockHashes[b]
}

// start runs the sink, the decoder and the parent manager.
func (f *fetchState) start() {
	s := f.s
	sink, err := s.ring.Subscribe(relay.AsSink())
	if err != nil {
		f.fail(err)
		return
	}
	f.sink = sink
	s.trees.setSource(f.reader)
	if err := s.startGenerator(f.reader, seedStartESI([]byte(s.node.host.ID()))); err != nil {
		f.fail(err)
		return
	}
	// Two decoders: blocks complete one window after another, and decoding
	// one while the next is verified keeps up with fast links.
	f.g.Go(f.runSink)
	f.g.Go(f.runDecoder)
	f.g.Go(f.runDecoder)
	s.up.start(f.cfg)
	if s.stripes > 1 {
		s.down.g.Go(s.down.tellWidths)
	}
	// Blocks that already hold enough symbols from an earlier run.
	for b := 0; b < s.numBlocks(); b++ {
		if !s.isFinished(uint8(b)) && f.spill.count(b) >= int(f.need[b].Load()) {
			f.scheduleDecode(b)
		}
	}
}

// runSink takes every symbol that enters the ring and appends it to its
// block's spill file. It never drops: a slow disk slows the upstream reader.
func (f *fetchState) runSink() {
	s := f.s
	for {
		sbn, esi, data, err := f.sink.NextView(s.ctx)
		if err != nil {
			// The ring ends (io.EOF) only when the session closes, which
			// reports ErrClosed itself; taking that for a failure raced
			// with it.
			if !errors.Is(err, context.Canceled) && !errors.Is(err, relay.ErrClosed) && !errors.Is(err, io.EOF) {
				f.fail(fmt.Errorf("sink: %w", err))
			}
			return
		}
		b := int(sbn)
		if b >= s.numBlocks() || s.isFinished(sbn) {
			continue
		}
		if esi >= s.ks[b] {
			// A repair symbol in the ring was stored with its sender
			// when it arrived (upstream.keep).
			continue
		}
		n, err := f.spill.add(b, esi, data)
		if err != nil {
			f.fail(err)
			return
		}
		if n >= int(f.need[b].Load()) {
			f.scheduleDecode(b)
		}
	}
}

// scheduleDecode queues block b for decoding and, since it holds enough
// symbols, tells the parents to stop sending it.
func (f *fetchState) scheduleDecode(b int) {
	if f.decoding[b].CompareAndSwap(false, true) {
		f.s.blocks.setPending(b, true)
		f.s.up.reportFinished()
		f.decodeCh <- b
	}
}

// runDecoder decodes blocks as they gather enough symbols.
func (f *fetchState) runDecoder() {
	s := f.s
	buf := make([]byte, 0)
	for {
		select {
		case <-s.ctx.Done():
			return
		case b := <-f.decodeCh:
			blen := int(s.oti.BlockLen(b))
			if cap(buf) < blen {
				buf = make([]byte, blen)
			}
			err := f.decode(b, buf[:blen])
			f.decoding[b].Store(false)
			if err != nil {
				f.fail(err)
				return
			}
			// More symbols may have arrived while decoding.
			if !s.isFinished(uint8(b)) && f.spill.count(b) >= int(f.need[b].Load()) {
				f.scheduleDecode(b)
			}
		}
	}
}

// decode tries to decode block b from its spill file, checks the result
// against the manifest (the source symbols rebuilt by decoding against the
// block's tree, or the whole block against its hash), compares every
// repair symbol received with the block's own (a difference blames its
// sender) and writes the block to the partial output. A block that fails
// is decoded again leaving out one sender's repair symbols at a time
// (protocol/SPEC.md, "Repair symbols").
func (f *fetchState) decode(b int, buf []byte) error {
	s := f.s
	if s.isFinished(uint8(b)) || s.ctx.Err() != nil {
		return nil
	}
	have := f.spill.count(b)
	f.fetchTreeForDisk(b)
	out, dec, g, err := f.attempt(b, buf, have, nil)
	defer func() {
		if dec != nil {
			dec.Release()
		}
	}()
	if err != nil {
		return err
	}
	if len(g.bad) > 0 {
		// Records read back from local storage that fail their tree:
		// dropped, blamed on no one; their ESIs are open again.
		log.Warnw("spill: dropping stored source symbols that fail their tree", "cid", s.cid, "block", b, "symbols", len(g.bad))
		bad := make(map[uint32]bool, len(g.bad))
		for _, e := range g.bad {
			bad[e] = true
		}
		if err := f.spill.rewrite(b, func(esi uint32, _ []byte, _ peer.ID, disk bool) bool { return !disk || !bad[esi] }); err != nil {
			return err
		}
		f.needMore(b, f.spill.count(b)+1)
		return nil
	}
	if out == nil {
		// Symbols of blamed peers stay in the spill file but are not used:
		// wait for as many more as the decoder lacks.
		f.needMore(b, have+max(1, int(s.ks[b])-g.used()))
		return nil
	}
	failed := false
	if !s.checkDecoded(b, out, g.has) {
		failed = true
		// Symbols that arrived while decoding count in the next attempts.
		alt, altDec := f.resolve(b, buf, max(have, f.spill.count(b)), g)
		if alt == nil {
			return nil
		}
		if dec != nil {
			dec.Release()
		}
		out, dec = alt, altDec
	}
	f.compareRepair(b, dec, failed)
	if _, err := f.part.WriteAt(out, s.oti.BlockOffset(b)); err != nil {
		return fmt.Errorf("write block %d: %w", b, err)
	}
	startWriteback(f.part, s.oti.BlockOffset(b), int64(len(out)))
	set := s.blocks.markFinished(b, time.Now())
	// Once the grace has passed, the generator may make repair symbols of
	// the block.
	f.g.Go(func() {
		t := time.NewTimer(s.tuning().ServeGrace)
		defer t.Stop()
		select {
		case <-t.C:
			s.down.refreshDemand()
		case <-s.ctx.Done():
		}
	})
	f.spill.finish(b)
	f.via.finish(b)
	if err := f.saveState(set); err != nil {
		return err
	}
	s.down.refreshDemand() // the generator can serve this block now
	s.up.reportFinished()
	if set.HasAll(s.numBlocks()) {
		f.complete()
	}
	return nil
}

// fetchTreeForDisk fetches block b's tree, when it is not here, before a
// decoding that reads symbols back from the spill file (a resume): they
// are checked like symbols from the network. Any current parent may have
// it; one that has not is not at fault here.
func (f *fetchState) fetchTreeForDisk(b int) {
	s := f.s
	if !s.trees.ok || s.trees.get(uint8(b)) != nil || !f.spill.onDisk(b) {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	for _, u := range s.up.list() {
		if _, err := s.trees.await(ctx, uint8(b), u.peer); err == nil || ctx.Err() != nil {
			return
		}
	}
}

// needMore waits for block b to hold n symbols before the next attempt and
// asks the parents for more of it.
func (f *fetchState) needMore(b, n int) {
	f.need[b].Store(int32(n))
	f.s.blocks.setPending(b, false) // parents: send more of this block
	f.s.up.reportFinished()
}

// gathered is what one decoding attempt read from a block's spill file.
type gathered struct {
	checked []uint64 // source ESIs used that were checked (on arrival, or read back with the tree)
	// senders counts the repair symbols used per source: named sender,
	// forwarding relay, or none (those read back from local storage).
	senders map[repairSource]int
	sources int      // source symbols used
	bad     []uint32 // stored source symbols that failed their tree
}

// used returns the number of symbols used.
func (g *gathered) used() int {
	n := g.sources
	for _, c := range g.senders {
		n += c
	}
	return n
}

// checkedCount returns the number of source symbols used that were
// checked.
func (g *gathered) checkedCount() int {
	n := 0
	for _, w := range g.checked {
		n += bits.OnesCount64(w)
	}
	return n
}

// has reports whether source symbol esi was used and checked.
func (g *gathered) has(esi uint32) bool {
	return int(esi>>6) < len(g.checked) && g.checked[esi>>6]&(1<<(esi&63)) != 0
}

// attempt assembles or decodes block b from up to have of its symbols,
// leaving out the repair symbols of blamed peers, those forwarded by
// blamed or distrusted relays, and those of the sources use (when not nil)
// rejects. out is the block (buf, or the spill's in-place image), nil when
// the symbols do not determine it yet; dec, when not nil, is the decoder
// that solved it (the caller releases it).
func (f *fetchState) attempt(b int, buf []byte, have int, use func(repairSource) bool) (out []byte, dec *fountain.BlockDecoder, g gathered, err error) {
	s := f.s
	k := s.ks[b]
	tree := s.trees.get(uint8(b))
	g.checked = make([]uint64, (k+63)/64)
	g.senders = make(map[repairSource]int)
	vias := f.via.snapshot(b)
	if use == nil && s.oti.N == 1 {
		if img, ok := f.spill.image(b); ok {
			// Every source symbol is here, in place, checked on arrival (a
			// loss-free path): the block is already assembled.
			for i := range g.checked {
				g.checked[i] = ^uint64(0)
			}
			return img[:len(buf)], nil, g, nil
		}
	}
	read := func(fn func(esi uint32, sym []byte) error) error {
		return f.spill.read(b, have, func(esi uint32, sym []byte, from peer.ID, disk bool) error {
			if esi < k {
				if disk && tree != nil {
					if tree.VerifySymbol(esi, sym) != nil {
						g.bad = append(g.bad, esi)
						return nil
					}
				}
				if !disk || tree != nil {
					g.checked[esi>>6] |= 1 << (esi & 63)
				}
				g.sources++
				return fn(esi, sym)
			}
			src := repairSource{peer: from}
			if from == "" && vias[esi] != "" {
				src = repairSource{peer: vias[esi], via: true}
			}
			if (use != nil && !use(src)) || f.excluded(src) {
				return nil
			}
			g.senders[src]++
			return fn(esi, sym)
		})
	}
	if use == nil && s.oti.N == 1 && f.spill.sourceCount(b) >= int(k) {
		// Every source symbol is here (some on disk): they are the block,
		// placed by ESI; nothing to solve.
		t := s.t
		g.senders = make(map[repairSource]int)
		err := read(func(esi uint32, sym []byte) error {
			if esi < k {
				copy(buf[int(esi)*t:], sym)
			}
			return nil
		})
		if err != nil {
			return nil, nil, g, fmt.Errorf("block %d: %w", b, err)
		}
		if len(g.bad) > 0 {
			return nil, nil, g, nil
		}
		return buf, nil, g, nil
	}
	dec = fountain.NewBlockDecoder(s.oti, b)
	err = read(func(esi uint32, sym []byte) error {
		_, err := dec.Add(esi, sym)
		return err
	})
	if err != nil {
		dec.Release()
		return nil, nil, g, fmt.Errorf("block %d: %w", b, err)
	}
	if len(g.bad) > 0 {
		dec.Release()
		return nil, nil, g, nil
	}
	if err := dec.Decode(buf); err != nil {
		dec.Release()
		if errors.Is(err, fountain.ErrNeedMore) {
			return nil, nil, g, nil
		}
		return nil, nil, g, fmt.Errorf("decode block %d: %w", b, err)
	}
	return buf, dec, g, nil
}

// resolve finds out, when block b decoded to bytes that fail its hash,
// whose repair symbols were wrong (source symbols are checked). The repair
// symbols are grouped by source: each named sender, each relay that
// forwarded unnamed ones, and those read back from local storage. It
// decodes again leaving out one group at a time; then, for every group
// whose repair symbols together with the source symbols are enough, with
// that group alone: had they all been right, the only block they determine
// is the right one, so a failure proves the group wrong (a named sender is
// blamed, a forwarding relay distrusted for repair symbols, stored ones
// dropped). It returns the first block that checks out, with the decoder
// that solved it. When nothing settles it, it keeps every symbol and waits
// until the smallest group can be left out or the largest tried alone.
func (f *fetchState) resolve(b int, buf []byte, have int, g gathered) ([]byte, *fountain.BlockDecoder) {
	s := f.s
	k := int(s.ks[b])
	senders := make([]repairSource, 0, len(g.senders))
	for p := range g.senders {
		senders = append(senders, p)
	}
	slices.SortFunc(senders, func(x, y repairSource) int {
		if c := strings.Compare(string(x.peer), string(y.peer)); c != 0 {
			return c
		}
		if x.via == y.via {
			return 0
		}
		if x.via {
			return 1
		}
		return -1
	})
	if unchecked := g.sources - g.checkedCount(); unchecked > 0 && s.trees.get(uint8(b)) == nil {
		// Stored source symbols that could not be checked (no tree data
		// from anyone yet) may be the wrong ones: dropped, blamed on no
		// one.
		log.Warnw("spill: dropping stored source symbols that could not be checked", "cid", s.cid, "block", b, "symbols", unchecked)
		if err := f.spill.rewrite(b, func(esi uint32, _ []byte, _ peer.ID, disk bool) bool { return int(esi) >= k || !disk }); err != nil {
			log.Warnw("spill rewrite", "cid", s.cid, "block", b, "err", err)
		}
		f.needMore(b, f.spill.count(b)+1)
		return nil, nil
	}
	wrong := fmt.Sprintf("its repair symbols of block %d decode, with checked source symbols, to a block that fails its hash", b)
	if len(senders) == 1 && senders[0].peer != "" {
		// One source's repair symbols with checked source symbols: had
		// they all been right, the only block they determine is the right
		// one. That source is proven wrong.
		f.convict(b, senders[0], wrong)
		f.needMore(b, have+max(1, k-g.sources))
		return nil, nil
	}
	try := func(use func(repairSource) bool) ([]byte, *fountain.BlockDecoder, bool) {
		out, dec, g2, err := f.attempt(b, buf, have, use)
		if err != nil || out == nil {
			return nil, nil, false
		}
		if s.checkDecoded(b, out, g2.has) {
			return out, dec, true
		}
		if dec != nil {
			dec.Release()
		}
		return nil, nil, true
	}
	if len(senders) > 1 {
		for _, p := range senders {
			if out, dec, _ := try(func(q repairSource) bool { return q != p }); out != nil {
				log.Infow("block checks out without one source's repair symbols", "cid", s.cid, "block", b, "sender", p.peer, "forwarded", p.via)
				return out, dec
			}
		}
	}
	if len(senders) > 2 && len(senders) <= maxPairGroups {
		// A wrong relay's repair symbols often reach a node both directly
		// and forwarded by an honest relay: leave out two groups at a
		// time, where what is left can still determine the block.
		for i, p := range senders {
			for _, q := range senders[i+1:] {
				if g.used()-g.senders[p]-g.senders[q] < k {
					continue
				}
				if out, dec, _ := try(func(r repairSource) bool { return r != p && r != q }); out != nil {
					log.Infow("block checks out without two sources' repair symbols", "cid", s.cid, "block", b, "senders", []peer.ID{p.peer, q.peer})
					return out, dec
				}
			}
		}
	}
	proven := false
	var best repairSource
	bestN := -1
	for _, p := range senders {
		n := g.senders[p]
		if g.sources+n < k {
			if n > bestN {
				best, bestN = p, n
			}
			continue
		}
		out, dec, decoded := try(func(q repairSource) bool { return q == p })
		if out != nil {
			return out, dec
		}
		if !decoded {
			if n > bestN {
				best, bestN = p, n
			}
			continue
		}
		proven = true
		f.convict(b, p, wrong)
	}
	if proven {
		usable := g.sources
		for p, n := range g.senders {
			if p.peer != "" && !f.excluded(p) {
				usable += n
			}
		}
		f.needMore(b, f.spill.count(b)+max(1, k+2-usable))
		return nil, nil
	}
	// Nothing settles it yet: keep every symbol, and try again once the
	// symbols left without the smallest group are enough (a few of
	// overhead): each attempt leaves out every group in turn, so the
	// wrong one is found as soon as the others decode without it, long
	// before the largest group can be tried alone. At least K/32 more,
	// though: every attempt is a decoding per group and per pair, and
	// while wrong symbols keep coming, attempts close together only burn
	// the CPU the node's links need.
	smallest := -1
	for _, p := range senders {
		if n := g.senders[p]; smallest < 0 || n < smallest {
			smallest = n
		}
	}
	more := max(1, k+2-(g.sources+bestN))
	if len(senders) > 1 {
		more = min(more, max(2, k/32, k+2-(g.used()-smallest)))
	}
	log.Infow("block failed its hash: collecting more symbols to tell its senders apart", "cid", s.cid, "block", b, "senders", len(senders), "largest", best.peer, "forwarded", best.via, "more", more)
	f.needMore(b, have+more)
	return nil, nil
}

// maxPairGroups bounds the groups of repair symbols for which resolve
// tries leaving out every pair (a decoding each).
const maxPairGroups = 8

// convict acts on repair symbols of block b proven wrong: a named sender
// is blamed, a relay that forwarded them is distrusted for repair symbols,
// and stored ones (an earlier run) are dropped, blamed on no one.
func (f *fetchState) convict(b int, src repairSource, reason string) {
	s := f.s
	s.badSymbols.Add(1)
	switch {
	case src.peer == "":
		log.Warnw("spill: dropping stored repair symbols that decode to a wrong block", "cid", s.cid, "block", b)
		k := int(s.ks[b])
		vias := f.via.snapshot(b)
		err := f.spill.rewrite(b, func(esi uint32, _ []byte, from peer.ID, _ bool) bool {
			return int(esi) < k || from != "" || vias[esi] != ""
		})
		if err != nil {
			log.Warnw("spill rewrite", "cid", s.cid, "block", b, "err", err)
		}
	case src.via:
		f.distrust(src.peer, reason)
	default:
		s.blame(src.peer, reason)
	}
}

// compareRepair encodes, with the decoder that solved block b, every
// repair symbol of it received from a peer and compares: a difference
// proves that sender wrong. With unnamed set (the block first decoded
// wrong), the unnamed repair symbols are compared too, and the relay a
// wrong one came from is distrusted for repair symbols. A block
// assembled from its source symbols alone used no repair symbol; those
// received are not compared (it would take an encoder built from the
// block) and do no harm.
func (f *fetchState) compareRepair(b int, dec *fountain.BlockDecoder, unnamed bool) {
	s := f.s
	k := s.ks[b]
	var vias map[uint32]peer.ID
	if unnamed {
		vias = f.via.snapshot(b)
	}
	if dec == nil || (!f.spill.hasRepairFrom(b) && len(vias) == 0) {
		return
	}
	own := make([]byte, s.t)
	wrong := map[repairSource]uint32{}
	err := f.spill.read(b, math.MaxInt, func(esi uint32, sym []byte, from peer.ID, _ bool) error {
		if esi < k {
			return nil
		}
		src := repairSource{peer: from}
		if from == "" {
			src = repairSource{peer: vias[esi], via: true}
		}
		if src.peer == "" {
			return nil
		}
		if _, known := wrong[src]; known {
			return nil
		}
		if err := dec.Symbol(esi, own); err != nil {
			return err // ErrNotSolved: every source symbol was here
		}
		if !bytes.Equal(own, sym) {
			wrong[src] = esi
		}
		return nil
	})
	if err != nil && !errors.Is(err, fountain.ErrNotSolved) {
		log.Warnw("comparing repair symbols", "cid", s.cid, "block", b, "err", err)
	}
	for p, esi := range wrong {
		reason := fmt.Sprintf("repair symbol %d of block %d differs from the block's own", esi, b)
		if p.via {
			s.badSymbols.Add(1)
			f.distrust(p.peer, reason)
			continue
		}
		f.convict(b, p, reason)
	}
}

// complete finishes a download: the output is synced and renamed into
// place, the spill directory removed, and the node turns into a source of
// its own, generating fresh ESIs from its copy.
func (f *fetchState) complete() {
	f.completing.Store(true)
	f.completeOnce.Do(func() {
		s := f.s
		f.doneAt.Store(time.Now().UnixNano())
		// Every block is verified and written: serve them all at once,
		// before the sync, so that children waiting for the last blocks do
		// not wait for the disk. The generator already runs over our copy
		// (the descriptor survives the rename).
		s.up.stop()
		if f.sink != nil {
			_ = f.sink.Close()
		}
		s.blocks.markComplete()
		s.down.refreshDemand()
		err := f.finishFile()
		if err == nil {
			s.node.provide(s.cid)
		}
		s.blocks.end(err)
		if err == nil {
			log.Infow("download complete", "cid", s.cid, "file", f.out, "took", time.Since(f.started).Round(time.Millisecond))
		}
	})
}

func (f *fetchState) finishFile() error {
	if err := f.part.Sync(); err != nil {
		return fmt.Errorf("sync output: %w", err)
	}
	if err := f.part.Close(); err != nil {
		return fmt.Errorf("close output: %w", err)
	}
	if err := os.Rename(f.partPath, f.out); err != nil {
		return fmt.Errorf("rename output: %w", err)
	}
	f.stateMu.Lock()
	f.stateGone = true
	if err := f.spill.remove(); err != nil {
		log.Warnw("spill cleanup", "err", err)
	}
	f.stateMu.Unlock()
	return nil
}

// fail ends the download with an error.
func (f *fetchState) fail(err error) {
	f.completeOnce.Do(func() {
		s := f.s
		log.Errorw("download failed", "cid", s.cid, "err", err)
		s.blocks.end(err)
	})
}

// close releases the files (keeping partial state for a resume).
func (f *fetchState) close() {
	if err := f.flushState(); err != nil {
		log.Warnw("resume state", "err", err)
	}
	if f.sink != nil {
		_ = f.sink.Close()
	}
	if f.spill != nil {
		_ = f.spill.close()
	}
	if f.part != nil {
		_ = f.part.Close()
	}
	if f.reader != nil {
		_ = f.reader.Close()
	}
}
