package node

import (
	"math"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Link describes one upstream or child of a session.
type Link struct {
	Peer   peer.ID
	Stripe int
	// Rate is the link's current rate in bytes/s: new symbols from an
	// upstream, frames sent to a child.
	Rate float64
	// Symbols received from an upstream (Fresh of them new) or sent to a
	// child (Skipped is what a child missed because it fell behind).
	Symbols, Fresh, Skipped uint64
	// Probe marks a short measurement subscription.
	Probe bool
	Since time.Time
}

// Progress is a snapshot of one session, for progress bars and status.
type Progress struct {
	CID        cid.Cid
	Name       string
	Size       int64
	SymbolSize int    // T, the symbol size in bytes
	Role       string // "source", "fetching" or "complete"
	Blocks     int
	BlocksDone int
	BytesDone  int64
	// SymbolsIn counts symbols that arrived from upstreams; SymbolsNew those
	// that were new (not duplicates). Needed is K summed over the blocks.
	SymbolsIn, SymbolsNew uint64
	Needed                uint64
	// Wasted symbols among SymbolsIn: those from probes, those of blocks
	// already decoded, and repeats of an ESI already held. (New symbols
	// beyond what decoding needed are SymbolsNew - Needed.)
	WasteProbe, WasteDone, WasteRepeat uint64
	// Rate is the current goodput in bytes/s (new symbols); Width the rate
	// at which this node receives new symbols (+Inf for a source).
	Rate, Width float64
	Uploaded    uint64
	Reparents   uint64
	// Blamed lists the peers proven to have sent bad data in this session
	// (oldest first); BadSymbols counts the symbols dropped as wrong.
	Blamed     []Blame
	BadSymbols uint64
	Upstreams  []Link
	Children   []Link
	Started    time.Time
	Completed  time.Time // zero until complete
	Done       bool
	Err        error
}

// Progress reports on the session for c.
func (n *Node) Progress(c cid.Cid) (Progress, bool) {
	s := n.session(c)
	if s == nil {
		return Progress{}, false
	}
	return s.progress(), true
}

// Sessions lists the CIDs this node serves or fetches.
func (n *Node) Sessions() []cid.Cid {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]cid.Cid, 0, len(n.sessions))
	for c := range n.sessions {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (s *session) progress() Progress {
	p := Progress{
		CID:         s.cid,
		Name:        s.manifest.Name,
		Size:        int64(s.manifest.Size),
		SymbolSize:  s.t,
		Blocks:      s.numBlocks(),
		SymbolsIn:   s.inRate.total.Load() / uint64(max(1, s.t)),
		SymbolsNew:  s.symbolsNew.Load(),
		WasteProbe:  s.dupProbe.Load(),
		WasteDone:   s.dupDone.Load(),
		WasteRepeat: s.dupRepeat.Load(),
		Rate:        s.goodput.rate(),
		Uploaded:    s.uploaded.Load(),
		Reparents:   s.reparents.Load(),
		Blamed:      s.blamed.list(),
		BadSymbols:  s.badSymbols.Load(),
		Started:     s.created,
	}
	p.Needed = uint64(s.neededSymbols())
	fin, complete := s.blocks.snapshot()
	p.Role = "fetching"
	if complete {
		p.Role = "source"
		if !s.origin() {
			p.Role = "complete"
		}
	}
	ups := s.up.list()
	kids := s.down.list()
	if done, err := s.blocks.ended(); done {
		p.Done = true
		p.Err = err
		if s.fetch != nil {
			if at := s.fetch.doneAt.Load(); at != 0 {
				p.Completed = time.Unix(0, at)
			}
			p.Started = s.fetch.started
		}
	}
	if s.origin() {
		p.Done = true
	}
	for b := 0; b < s.numBlocks(); b++ {
		if fin.Has(uint8(b)) {
			p.BlocksDone++
			p.BytesDone += s.oti.BlockLen(b)
		}
	}
	p.Width = p.Rate
	if complete {
		p.Width = math.Inf(1)
	}
	for _, u := range ups {
		p.Upstreams = append(p.Upstreams, Link{Peer: u.peer, Stripe: u.stripe, Rate: u.rate(), Symbols: u.symbols.Load(), Fresh: u.fresh.Load(), Probe: u.probe, Since: u.started})
	}
	// Parents first (oldest first), then probes: the first link is the
	// current main parent.
	sort.SliceStable(p.Upstreams, func(i, j int) bool {
		a, b := p.Upstreams[i], p.Upstreams[j]
		if a.Probe != b.Probe {
			return !a.Probe
		}
		return a.Since.Before(b.Since)
	})
	for _, c := range kids {
		st := c.cons.Stats()
		p.Children = append(p.Children, Link{Peer: c.peer, Stripe: c.stripe, Rate: st.Rate, Symbols: st.Sent, Skipped: st.Skipped, Probe: c.probe, Since: c.started})
	}
	return p
}
