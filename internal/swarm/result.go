package swarm

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/romap2p/romap2p/treebuild"
)

// Result is the outcome of a swarm run. Rates are in bits per second, times
// in seconds, as in the command's JSON output.
type Result struct {
	Source  string `json:"source"`
	CID     string `json:"cid"`
	Size    int64  `json:"size"`
	Stripes int    `json:"stripes"`
	// BoundS is the lower bound on the time any scheme needs to deliver the
	// file to every receiver (treebuild.Bound).
	BoundS float64 `json:"bound_s"`
	// TotalS is the time from the start until the last successful receiver
	// completed.
	TotalS float64 `json:"total_s"`
	// SourceUploadedBytes counts what the source sent, frames included.
	SourceUploadedBytes int64        `json:"source_uploaded_bytes"`
	Peers               []PeerResult `json:"peers"`
}

// PeerResult is the outcome of one receiver.
type PeerResult struct {
	Name string `json:"name"`
	// Parent is the upstream that delivered the most new symbols (the
	// given parent when the tree was fixed); empty if none was seen.
	Parent string `json:"parent"`
	// IdealParent is the parent in the centralised widest-path tree.
	IdealParent string `json:"ideal_parent"`
	// Upstreams lists every upstream seen delivering new symbols to this
	// receiver (short probe subscriptions included), most first;
	// UpstreamCount is its length.
	Upstreams     []string `json:"upstream_names"`
	UpstreamCount int      `json:"upstreams"`
	// StripeParents names, per stripe (index = stripe), the upstream that
	// delivered the most new symbols of that stripe over the run, short
	// probe subscriptions aside (a probe only when nothing else fed the
	// stripe; the given parent when no symbol of the stripe was seen and
	// the tree was fixed); empty if none was seen.
	StripeParents []string `json:"stripe_parents"`
	// StripeGoodputBps splits GoodputBps over the stripes in proportion to
	// the new symbols each stripe delivered (0 unless OK).
	StripeGoodputBps []float64 `json:"stripe_goodput_bps"`
	// WidthBps is the receiver's width in the centralised widest-path tree,
	// the ideal for a single tree; MaxFlowBps what it could take from all
	// hosts at once; DirectBps what direct unicast from the source gives.
	WidthBps   float64 `json:"width_bps"`
	MaxFlowBps float64 `json:"maxflow_bps"`
	DirectBps  float64 `json:"direct_bps"`
	// GoodputBps is the file size over the time from joining to completion.
	GoodputBps float64 `json:"goodput_bps"`
	JoinS      float64 `json:"join_s"`
	// CompletionS is the time from joining to completion.
	CompletionS float64 `json:"completion_s"`
	// OK means the output was complete and its sha256 equals the input's.
	OK            bool   `json:"ok"`
	Killed        bool   `json:"killed,omitempty"`
	Err           string `json:"error,omitempty"`
	UploadedBytes int64  `json:"uploaded_bytes"`
	SymbolsIn     uint64 `json:"symbols_in"`
	SymbolsNeeded uint64 `json:"symbols_needed"`
	// SymbolsNew counts the received symbols that were new; the waste
	// fields split the rest: from probes, of blocks already decoded, and
	// repeated ESIs.
	SymbolsNew  uint64 `json:"symbols_new"`
	WasteProbe  uint64 `json:"waste_probe"`
	WasteDone   uint64 `json:"waste_done"`
	WasteRepeat uint64 `json:"waste_repeat"`
	// Reparents counts the parent switches the peer made on measurements.
	Reparents uint64 `json:"reparents"`
}

// Snapshot is the state of a running swarm, for a live display.
type Snapshot struct {
	Elapsed time.Duration
	Peers   []PeerState
}

// PeerState is the live state of one receiver.
type PeerState struct {
	Name string
	// Parent is the current first upstream (the last one seen once done).
	Parent    string
	Upstreams int
	// GoodputBps is the current rate of new symbols, bits per second.
	GoodputBps float64
	// Progress is the fraction of the needed symbols received, 0 to 1.
	Progress float64
	Joined   bool
	Done     bool
	OK       bool
	Killed   bool
	Err      error
}

// Snapshot returns the current state of every receiver, in matrix order.
func (s *Swarm) Snapshot() Snapshot {
	snap := Snapshot{Elapsed: time.Since(s.start)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, mb := range s.members {
		if mb.source {
			continue
		}
		ps := PeerState{
			Name:   mb.name,
			Parent: mb.parent,
			Joined: mb.joined,
			Done:   mb.finished,
			OK:     mb.ok,
			Killed: mb.killed,
			Err:    mb.err,
		}
		if mb.hasLast {
			p := mb.last
			for _, u := range p.Upstreams {
				if !u.Probe {
					ps.Upstreams++
				}
			}
			if !mb.finished {
				ps.GoodputBps = 8 * p.Rate
			}
			if p.Needed > 0 {
				// Symbols only estimate progress: 100 % means verified.
				ps.Progress = math.Min(0.999, float64(p.SymbolsNew)/float64(p.Needed))
			}
		}
		if mb.ok {
			ps.Progress = 1
		}
		snap.Peers = append(snap.Peers, ps)
	}
	return snap
}

// result assembles the Result once every fetch has returned.
func (s *Swarm) result() *Result {
	r := &Result{
		Source:              s.cfg.Source,
		CID:                 s.cid.String(),
		Size:                s.cfg.Size,
		Stripes:             s.cfg.Stripes,
		SourceUploadedBytes: s.nw.HostStats(s.cfg.Source).Uploaded,
	}
	if b, err := treebuild.Bound(s.m, s.src, float64(s.cfg.Size)); err == nil {
		r.BoundS = b.Seconds
	}
	tree, err := treebuild.WidestPathTree(s.m, s.src)
	if err != nil {
		tree = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, mb := range s.members {
		if mb.source {
			continue
		}
		pr := PeerResult{
			Name:          mb.name,
			DirectBps:     finite(8 * s.m.Rate(s.src, mb.idx)),
			MaxFlowBps:    finite(8 * treebuild.MaxFlow(s.m, s.src, mb.idx)),
			JoinS:         mb.joinAt.Seconds(),
			OK:            mb.ok,
			Killed:        mb.killed,
			UploadedBytes: s.nw.HostStats(mb.name).Uploaded,
		}
		if tree != nil {
			pr.WidthBps = finite(8 * tree.Width[mb.idx])
			if p := tree.Parent[mb.idx]; p >= 0 {
				pr.IdealParent = s.m.Name(p)
			}
		}
		if mb.err != nil {
			pr.Err = mb.err.Error()
		}
		if mb.hasLast {
			pr.SymbolsIn, pr.SymbolsNeeded = mb.last.SymbolsIn, mb.last.Needed
			pr.SymbolsNew = mb.last.SymbolsNew
			pr.WasteProbe, pr.WasteDone, pr.WasteRepeat = mb.last.WasteProbe, mb.last.WasteDone, mb.last.WasteRepeat
			pr.Reparents = mb.last.Reparents
		}
		pr.Upstreams = mb.upstreamsByFresh(true)
		pr.UpstreamCount = len(pr.Upstreams)
		pr.Parent = s.cfg.Parents[mb.name]
		if pr.Parent == "" {
			if main := mb.upstreamsByFresh(false); len(main) > 0 {
				pr.Parent = main[0]
			} else {
				pr.Parent = mb.parent
			}
		}
		var stripeFresh []uint64
		pr.StripeParents, stripeFresh = mb.stripeFeeds(s.cfg.Stripes)
		for i, p := range pr.StripeParents {
			if p == "" {
				pr.StripeParents[i] = s.cfg.Parents[mb.name]
			}
		}
		if mb.ok {
			pr.JoinS = mb.joinedAt.Sub(s.start).Seconds()
			pr.CompletionS = mb.doneAt.Sub(mb.joinedAt).Seconds()
			if pr.CompletionS > 0 {
				pr.GoodputBps = 8 * float64(s.cfg.Size) / pr.CompletionS
			}
			r.TotalS = math.Max(r.TotalS, mb.doneAt.Sub(s.start).Seconds())
		}
		pr.StripeGoodputBps = make([]float64, len(stripeFresh))
		var all uint64
		for _, n := range stripeFresh {
			all += n
		}
		if all > 0 {
			for i, n := range stripeFresh {
				pr.StripeGoodputBps[i] = pr.GoodputBps * float64(n) / float64(all)
			}
		}
		r.Peers = append(r.Peers, pr)
	}
	return r
}

// upstreamsByFresh returns the names of the upstreams that fed mb new
// symbols, most first; probes count only if withProbes. Called with
// Swarm.mu held.
func (mb *member) upstreamsByFresh(withProbes bool) []string {
	per := map[string]uint64{}
	for k, n := range mb.fresh {
		if n > 0 && (withProbes || !k.probe) {
			per[k.name] += n
		}
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(per[b], per[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return names
}

// stripeFeeds returns, per stripe, the upstream that delivered the most new
// symbols of the stripe (see PeerResult.StripeParents; "" when no link of
// the stripe was seen) and the new symbols the stripe delivered from every
// upstream, probes included. Called with Swarm.mu held.
func (mb *member) stripeFeeds(stripes int) ([]string, []uint64) {
	type feed struct {
		name  string
		probe bool
	}
	per := make([]map[feed]uint64, stripes)
	fresh := make([]uint64, stripes)
	for k, n := range mb.fresh {
		if k.stripe < 0 || k.stripe >= stripes {
			continue
		}
		if per[k.stripe] == nil {
			per[k.stripe] = map[feed]uint64{}
		}
		per[k.stripe][feed{k.name, k.probe}] += n
		fresh[k.stripe] += n
	}
	parents := make([]string, stripes)
	for i, feeds := range per {
		var best feed
		var bestN uint64
		found := false
		for f, n := range feeds {
			if f.probe && n == 0 {
				continue
			}
			better := !found ||
				// a subscription beats a probe whatever they delivered
				(best.probe && !f.probe) ||
				(best.probe == f.probe && (n > bestN || n == bestN && f.name < best.name))
			if better {
				best, bestN, found = f, n, true
			}
		}
		if found {
			parents[i] = best.name
		}
	}
	return parents, fresh
}

// finite maps an unbounded rate (no limit anywhere on the path) to 0, which
// the output reads as "unlimited"; JSON has no infinity.
func finite(x float64) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return 0
	}
	return x
}
