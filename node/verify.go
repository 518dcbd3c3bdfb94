package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// Checking symbols (protocol/SPEC.md, "Checking symbols"): every source
// symbol that arrives is checked against its block's tree data before it is
// stored, forwarded or decoded. The tree data of a block comes from a peer
// that holds it (/roma/tree/1.0.0), checked against the manifest's block
// hash, or is computed here from a block this node holds. treeCache keeps
// the checked trees of a session and serves them.

// treeAhead is how many blocks beyond the one asked for a tree fetch
// covers.
const treeAhead = 1

// errTreeUnavailable means a peer answered that it has no tree data for a
// block.
var errTreeUnavailable = errors.New("tree data unavailable")

// treeCache holds the checked tree data of a session's blocks. Reading a
// tree is one atomic load (it runs for every arriving source symbol);
// fetching one is single-flight per block.
type treeCache struct {
	s *session
	// ok is set when the content's source symbols can be checked one by
	// one (BLAKE3 block hashes, T a multiple of 1 KiB).
	ok    bool
	trees []atomic.Pointer[protocol.BlockTree]

	mu     sync.Mutex
	flight map[uint8]chan struct{} // blocks being fetched: closed when done

	// src is the local copy trees are computed from for blocks this node
	// holds (the added file, or the partial output of a download); nil
	// until set.
	src       atomic.Pointer[readerAt]
	computeMu sync.Mutex // serialises computing trees from src
}

type readerAt struct{ io.ReaderAt }

func newTreeCache(s *session) *treeCache {
	_, err := protocol.TreeLeafSize(s.manifest)
	return &treeCache{
		s:      s,
		ok:     err == nil,
		trees:  make([]atomic.Pointer[protocol.BlockTree], len(s.manifest.BlockHashes)),
		flight: make(map[uint8]chan struct{}),
	}
}

// setSource names the local copy that trees of held blocks are computed
// from.
func (tc *treeCache) setSource(r io.ReaderAt) {
	if r != nil {
		tc.src.Store(&readerAt{r})
	}
}

// get returns block b's checked tree, or nil.
func (tc *treeCache) get(b uint8) *protocol.BlockTree {
	if int(b) >= len(tc.trees) {
		return nil
	}
	return tc.trees[b].Load()
}

// put keeps a checked tree.
func (tc *treeCache) put(t *protocol.BlockTree) {
	if b := t.Layout().SBN; int(b) < len(tc.trees) {
		tc.trees[b].CompareAndSwap(nil, t)
	}
}

// local returns block b's tree for serving it: the cached one, or one
// computed from the local copy when this node holds the block.
func (tc *treeCache) local(b uint8) *protocol.BlockTree {
	if !tc.ok || int(b) >= len(tc.trees) {
		return nil
	}
	if t := tc.trees[b].Load(); t != nil {
		return t
	}
	s := tc.s
	src := tc.src.Load()
	if src == nil || !s.isFinished(b) {
		return nil
	}
	tc.computeMu.Lock()
	defer tc.computeMu.Unlock()
	if t := tc.trees[b].Load(); t != nil {
		return t
	}
	buf := make([]byte, s.oti.BlockLen(int(b)))
	if _, err := src.ReadAt(buf, s.oti.BlockOffset(int(b))); err != nil && !errors.Is(err, io.EOF) {
		log.Warnw("block tree: reading the local copy", "cid", s.cid, "block", b, "err", err)
		return nil
	}
	t, err := protocol.ComputeBlockTree(s.manifest, b, buf)
	if err != nil {
		// The local copy does not match its hash: never serve it.
		log.Errorw("block tree: the local copy of a held block is wrong", "cid", s.cid, "block", b, "err", err)
		return nil
	}
	tc.put(t)
	return t
}

// precompute computes the tree of every block from the local copy, in
// order, until the session ends.
func (tc *treeCache) precompute() {
	if !tc.ok {
		return
	}
	for b := range tc.trees {
		if tc.s.ctx.Err() != nil {
			return
		}
		tc.local(uint8(b))
	}
}

// await returns block b's tree, fetching it from p (the peer that sent a
// source symbol of b) when it is not here yet; a fetch already under way
// for b, from anyone, is waited for first. The error wraps
// errTreeUnavailable when p answered that it has none (a peer that sends
// source symbols of a block must hold its tree: that is bad data from p).
func (tc *treeCache) await(ctx context.Context, b uint8, p peer.ID) (*protocol.BlockTree, error) {
	for attempt := 0; ; attempt++ {
		if t := tc.get(b); t != nil {
			return t, nil
		}
		tc.mu.Lock()
		if ch, ok := tc.flight[b]; ok && attempt < 3 {
			tc.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// Lead a fetch: block b, and the next block this node will want
		// whose tree is neither here nor on its way. Not the whole window:
		// symbols of b wait for the fetch, and on a narrow path the trees
		// of 8 blocks (64 KiB each for 4 MiB blocks) held the first symbols
		// of a start back for seconds (Table I at 0.2 on the testbed: the
		// source's 1.7 Mbit/s path to BU).
		var want protocol.BlockSet
		want.Add(b)
		ch := make(chan struct{})
		tc.flight[b] = ch
		extra := min(treeAhead, tc.s.tuning().WindowBlocks)
		for x := int(b) + 1; x < len(tc.trees) && extra > 0; x++ {
			if tc.s.isFinished(uint8(x)) || tc.trees[x].Load() != nil {
				continue
			}
			if _, busy := tc.flight[uint8(x)]; busy {
				continue
			}
			want.Add(uint8(x))
			tc.flight[uint8(x)] = ch
			extra--
		}
		tc.mu.Unlock()
		err := tc.fetch(ctx, p, want)
		tc.mu.Lock()
		for x := range tc.flight {
			if tc.flight[x] == ch {
				delete(tc.flight, x)
			}
		}
		tc.mu.Unlock()
		close(ch)
		if t := tc.get(b); t != nil {
			return t, nil
		}
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("block %d from %s: %w", b, p, errTreeUnavailable)
	}
}

// fetch asks p for the tree data of the blocks in want and keeps every
// tree that checks out. Tree data that does not match its block hash
// blames p. It returns an error when the exchange failed; blocks p has no
// tree for are simply not kept.
func (tc *treeCache) fetch(ctx context.Context, p peer.ID, want protocol.BlockSet) error {
	s := tc.s
	n := s.node
	ctx, cancel := context.WithTimeout(ctx, s.tuning().HandshakeTimeout)
	defer cancel()
	st, err := n.newStream(ctx, p, protocol.TreeID)
	if err != nil {
		return fmt.Errorf("open tree stream to %s: %w", p, err)
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	if err := scopeStream(st); err != nil {
		_ = st.Reset()
		return err
	}
	dl, _ := ctx.Deadline()
	_ = st.SetDeadline(dl)
	if err := protocol.WriteTreeRequest(st, &protocol.TreeRequest{CID: s.cid, Blocks: want}); err != nil {
		_ = st.Reset()
		return fmt.Errorf("tree request to %s: %w", p, err)
	}
	_ = st.CloseWrite()
	tr := protocol.NewTreeReader(st, s.manifest, want)
	for {
		sbn, t, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			_ = st.Reset()
			if errors.Is(err, protocol.ErrTreeMismatch) {
				s.blame(p, fmt.Sprintf("tree data of block %d does not match its block hash", sbn))
			}
			return fmt.Errorf("tree data from %s: %w", p, err)
		}
		if t != nil {
			tc.put(t)
		}
	}
}

// handleTree serves block tree data (/roma/tree/1.0.0): for every block
// asked, the tree this node checked or computed from the block it holds,
// or "unavailable".
func (n *Node) handleTree(st network.Stream) {
	defer st.Close()
	remote := st.Conn().RemotePeer()
	if err := scopeStream(st); err != nil {
		log.Debugw("tree stream refused", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(n.cfg.tuning.HandshakeTimeout))
	q, err := protocol.ReadTreeRequest(st)
	if err != nil {
		log.Debugw("bad tree request", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	sess := n.session(q.CID)
	var buf []byte
	for b := 0; b < protocol.MaxSourceBlocks; b++ {
		if !q.Blocks.Has(uint8(b)) {
			continue
		}
		var t *protocol.BlockTree
		if sess != nil {
			t = sess.trees.local(uint8(b))
		}
		if t == nil {
			buf = protocol.AppendTreeUnavailable(buf[:0], uint8(b))
		} else {
			buf = protocol.AppendTreeEntry(buf[:0], t)
		}
		if _, err := st.Write(buf); err != nil {
			log.Debugw("tree response", "peer", remote, "err", err)
			_ = st.Reset()
			return
		}
	}
}

// checkDecoded checks a block decoded into buf (its BlockLen bytes) against
// the manifest. held reports which source symbols were received (and so
// checked on arrival); only the others, rebuilt by decoding, are hashed
// when the block's tree is here. Without a tree the block is hashed whole
// and, for content with trees, its tree kept.
func (s *session) checkDecoded(b int, buf []byte, held func(esi uint32) bool) bool {
	tc := s.trees
	if !tc.ok {
		return s.manifest.SumBlock(buf) == s.manifest.BlockHashes[b]
	}
	t := tc.get(uint8(b))
	if t == nil {
		t, err := protocol.ComputeBlockTree(s.manifest, uint8(b), buf)
		if err != nil {
			return false
		}
		tc.put(t)
		return true
	}
	T := s.t
	k := s.oti.BlockSymbols(b)
	// Whole aligned runs with a rebuilt symbol take one BLAKE3 pass
	// (protocol.BlockTree.VerifyRun); the rest are checked one by one.
	run := t.RunSymbols()
	var pad []byte
	for esi := 0; esi < k; esi++ {
		if run > 0 && esi%run == 0 && (esi+run)*T <= len(buf) {
			if !rebuiltIn(held, esi, run) {
				esi += run - 1
				continue
			}
			if bad, _ := t.VerifyRun(uint32(esi), (*[protocol.RunBytes]byte)(buf[esi*T:(esi+run)*T])); bad >= 0 {
				return false
			}
			esi += run - 1
			continue
		}
		if held != nil && held(uint32(esi)) {
			continue
		}
		sym := buf[esi*T : min((esi+1)*T, len(buf))]
		if len(sym) < T {
			if pad == nil {
				pad = make([]byte, T)
			}
			copy(pad, sym)
			sym = pad
		}
		if t.VerifySymbol(uint32(esi), sym) != nil {
			return false
		}
	}
	return true
}

// rebuiltIn reports whether any of the n source symbols from first on was
// not received (held nil: none was).
func rebuiltIn(held func(esi uint32) bool, first, n int) bool {
	if held == nil {
		return true
	}
	for esi := first; esi < first+n; esi++ {
		if !held(uint32(esi)) {
			return true
		}
	}
	return false
}
