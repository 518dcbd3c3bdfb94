package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	for _, list := range [][]peer.AddrInfo{cfg.parents, cfg.peers, n.cfg.bootstrap} {
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
			if !errors.Is(err, context.Canceled) && !errors.Is(err, relay.ErrClosed) {
				f.fail(fmt.Errorf("sink: %w", err))
			}
			return
		}
		b := int(sbn)
		if b >= s.numBlocks() || s.isFinished(sbn) {
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

// decode tries to decode block b from its spill file; on success it checks
// the block's hash and writes it to the partial output.
func (f *fetchState) decode(b int, buf []byte) error {
	s := f.s
	if s.isFinished(uint8(b)) || s.ctx.Err() != nil {
		return nil
	}
	have := f.spill.count(b)
	k := s.oti.BlockSymbols(b)
	if img, ok := f.spill.image(b); ok && s.oti.N == 1 {
		// Every source symbol is here, in place (a loss-free path): the
		// block is already assembled.
		buf = img[:len(buf)]
	} else if s.oti.N == 1 && f.spill.sourceCount(b) >= k {
		// Every source symbol is here (some on disk): they are the block,
		// placed by ESI; nothing to solve.
		t := int(s.oti.T)
		err := f.spill.read(b, have, func(esi uint32, sym []byte) error {
			if int(esi) < k {
				copy(buf[int(esi)*t:], sym)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("block %d: %w", b, err)
		}
	} else {
		dec := fountain.NewBlockDecoder(s.oti, b)
		defer dec.Release()
		err := f.spill.read(b, have, func(esi uint32, sym []byte) error {
			_, err := dec.Add(esi, sym)
			return err
		})
		if err != nil {
			return fmt.Errorf("block %d: %w", b, err)
		}
		if err := dec.Decode(buf); err != nil {
			if errors.Is(err, fountain.ErrNeedMore) {
				f.need[b].Store(int32(have + 1))
				s.blocks.setPending(b, false) // parents: send more of this block
				s.up.reportFinished()
				return nil
			}
			return fmt.Errorf("decode block %d: %w", b, err)
		}
	}
	if s.manifest.SumBlock(buf) != s.manifest.BlockHashes[b] {
		// Some parent fed bad symbols. Nothing is written; the block is
		// collected again and the current parents are distrusted.
		log.Warnw("block failed its hash: collecting it again", "cid", s.cid, "block", b)
		s.up.distrust()
		f.need[b].Store(int32(s.oti.BlockSymbols(b)))
		err := f.spill.discard(b)
		s.blocks.setPending(b, false)
		s.up.reportFinished()
		return err
	}
	if _, err := f.part.WriteAt(buf, s.oti.BlockOffset(b)); err != nil {
		return fmt.Errorf("write block %d: %w", b, err)
	}
	startWriteback(f.part, s.oti.BlockOffset(b), int64(len(buf)))
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
