package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/romap2p/romap2p/treebuild"
)

// Tuning holds the timeouts, thresholds, bans, windows and buffer sizes of
// a node's sessions. DefaultTuning gives the values the node runs with;
// WithTuning replaces them (tests shorten them). The parent choice's own
// figures (probe window and interval, dwell, hysteresis, stall timeout,
// the backoff after a failure) are the chooser's: see WithChooser.
type Tuning struct {
	// HandshakeTimeout bounds every request/response exchange on a new
	// stream (default 10 s).
	HandshakeTimeout time.Duration
	// StatusTimeout bounds a status query to a candidate parent (3 s).
	StatusTimeout time.Duration
	// StatusMaxAge is how long a candidate's status answer serves every
	// stripe of a download before the peer is asked again (500 ms; 0: only
	// queries in flight are shared).
	StatusMaxAge time.Duration
	// ManifestPatience is how long Get keeps asking for a manifest nobody
	// has yet, when its context has no deadline (with one, it asks until
	// the deadline): peers may be about to get it themselves (1 min).
	ManifestPatience time.Duration
	// DiscoverEvery is how often a download asks the content router for
	// providers again (20 s).
	DiscoverEvery time.Duration
	// ControlTimeout bounds the write of one control frame to a parent,
	// and the queueing of one to a child (5 s).
	ControlTimeout time.Duration
	// GoodbyeTimeout bounds the goodbye to a child that is dropped, and
	// LeaveTimeout the wait for its writer to send it (1 s, 2 s).
	GoodbyeTimeout, LeaveTimeout time.Duration

	// WindowBlocks is how many of its first unfinished blocks a child is
	// sent at a time (8). A small window lets blocks complete early (relays
	// then serve them from their own copy), keeps a receiver's pending
	// symbols within its in-memory budget and a generator's blocks within
	// its encoder cache. (On Table I, 8 stripes, 256 MiB: 8 blocks took
	// 27.8-28.2 s, 32 blocks 28.8-33.9 s with a third more system time for
	// spill and scratch I/O.)
	WindowBlocks int
	// ServeGrace is how long a relay waits after decoding a block before it
	// generates repair symbols of it (500 ms): the symbols it already
	// forwarded are usually enough for its children, and repair symbols
	// need the block's intermediate symbols, which cost about as much as
	// decoding it. Source symbols a child missed are sent at once.
	ServeGrace time.Duration
	// StateEvery is the least time between two writes of a download's
	// resume state (250 ms). A block finished since the last write is
	// fetched again after a crash; nothing unverified is ever trusted.
	StateEvery time.Duration

	// Credits: a receiver grants each upstream a share of each block's
	// remaining need, in proportion to the rate it delivers.
	// CreditInterval is how often they are worked out (20 ms),
	// CreditRefresh how often a frame is sent even if nothing changed
	// (250 ms), CreditWarmup how long a new upstream counts as fast as
	// the others (1 s). An upstream that had credit for a block but
	// delivered none of it for CreditStuckAfter while it delivered others
	// gets CreditStuck of its share (0.1, 250 ms): a relay that decoded the
	// block and does not serve it yet.
	CreditInterval, CreditRefresh, CreditWarmup time.Duration
	CreditStuck                                 float64
	CreditStuckAfter                            time.Duration

	// Slow is when a relay's child takes no slot (share 0.25 of the
	// median rate after 1 s, or lagging half a ring for 500 ms; share 0.1
	// lagging for 200 ms). SlowCheck is how often the source checks (100
	// ms); SlowBan how long a demoted child takes only a leaf slot at the
	// source (30 s; see Admit).
	Slow      treebuild.SlowPolicy
	SlowCheck time.Duration
	SlowBan   time.Duration

	// ProbeShare: a receiver that gets at least this share of its parent's
	// width in a stripe probes only candidates wider than that parent
	// (0.5). TailShare: once it holds this share of the symbols it needs,
	// it stops probing (0.8). SwitchWait is how long a new parent has to
	// deliver its first symbol before the old one is let go (2 s).
	ProbeShare, TailShare float64
	SwitchWait            time.Duration

	// A stripe parent older than StarveAfter (3 s) that delivers less
	// than StarveShare (0.2) of the median rate of this node's other
	// stripe parents, for a second on end, is let go like a stalled one: a relay that lost its own
	// way to the source in that stripe still sends a trickle (the blocks
	// it decoded), never enough to look stalled.
	StarveShare float64
	StarveAfter time.Duration

	// BoundShare: when most of a peer's stripe parents older than
	// StarveAfter pass it less than BoundShare (0.7) of what they receive
	// in their stripe (their width, which relays repeat as it moves), the
	// peer's own downlink is what limits it, and another parent in any
	// stripe would only get the same share. It then neither probes nor
	// switches on measured rates and takes no new extra upstreams: each
	// of those costs duplicates and the symbols in flight on the stream it
	// leaves, out of the downlink that limits it (see width.go).
	BoundShare float64

	// Extra (whole-stream) upstreams from complete peers beside the stripe
	// parents: at most MaxExtra (2), reconsidered every ExtraTick (250 ms),
	// dropped by ExtraDrop (idle 2 s, or more than 10 % duplicates after
	// 128 symbols); a peer that refused or was dropped is left alone for
	// ExtraBackoff (2 s).
	MaxExtra     int
	ExtraTick    time.Duration
	ExtraDrop    treebuild.ExtraPolicy
	ExtraBackoff time.Duration

	// UpstreamBuffer and ChildBuffer size the readers of a parent's and a
	// child's stream (128 KiB, 32 KiB).
	UpstreamBuffer, ChildBuffer int

	// Admit is how children are taken and kept: they show life or lose
	// their slot, the source keeps leaf slots for newcomers, a slow relay
	// child is demoted to a leaf (see admit.go).
	Admit treebuild.AdmitPolicy

	// StrictRepair: a relay does not forward the repair symbols it
	// receives, so every repair symbol on the wire comes from the peer
	// that generated it and a wrong one names its sender exactly
	// (protocol/SPEC.md, "Repair symbols"). Off by default: without the
	// relays' repair symbols a subtree gets only its stripe's source
	// symbols through them, and an 8-stripe in-process swarm took about
	// twice as long (3.2-3.5 s against 6.0-6.4 s for 16 MiB). Off, source
	// symbols are still checked at every hop and their senders blamed
	// exactly, and so are the repair symbols of a parent that was
	// complete when it took the child (it forwards nothing); repair
	// symbols a relay still fetching sends are kept without a name but
	// with that relay as their via, and passed on no further: when they
	// are proven wrong nobody is blamed, they are left out and the via is
	// left as a parent (see via.go).
	StrictRepair bool
}

// DefaultTuning returns the figures a node runs with unless WithTuning
// says otherwise.
func DefaultTuning() Tuning {
	return Tuning{
		HandshakeTimeout: 10 * time.Second,
		StatusTimeout:    3 * time.Second,
		StatusMaxAge:     500 * time.Millisecond,
		ManifestPatience: time.Minute,
		DiscoverEvery:    20 * time.Second,
		ControlTimeout:   5 * time.Second,
		GoodbyeTimeout:   time.Second,
		LeaveTimeout:     2 * time.Second,

		WindowBlocks: 8,
		ServeGrace:   500 * time.Millisecond,
		StateEvery:   250 * time.Millisecond,

		CreditInterval:   20 * time.Millisecond,
		CreditRefresh:    250 * time.Millisecond,
		CreditWarmup:     time.Second,
		CreditStuck:      0.1,
		CreditStuckAfter: 250 * time.Millisecond,

		Slow: treebuild.SlowPolicy{
			Share: 0.25, After: time.Second, Lag: 500 * time.Millisecond,
			ClearShare: 0.1, ClearLag: 200 * time.Millisecond,
		},
		SlowCheck: 100 * time.Millisecond,
		SlowBan:   30 * time.Second,

		ProbeShare: 0.5,
		TailShare:  0.8,
		SwitchWait: 2 * time.Second,

		StarveShare: 0.2,
		StarveAfter: 3 * time.Second,
		BoundShare:  0.7,

		MaxExtra:     2,
		ExtraTick:    250 * time.Millisecond,
		ExtraDrop:    treebuild.ExtraPolicy{Idle: 2 * time.Second, DupShare: 0.1, MinSymbols: 128},
		ExtraBackoff: 2 * time.Second,

		UpstreamBuffer: 128 << 10,
		ChildBuffer:    32 << 10,

		Admit: treebuild.DefaultAdmitPolicy(),
	}
}

// Validate reports figures that cannot work.
func (t *Tuning) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{
		"handshake timeout": t.HandshakeTimeout, "status timeout": t.StatusTimeout,
		"manifest patience": t.ManifestPatience, "discovery interval": t.DiscoverEvery,
		"control timeout": t.ControlTimeout, "goodbye timeout": t.GoodbyeTimeout, "leave timeout": t.LeaveTimeout,
		"credit interval": t.CreditInterval, "credit refresh": t.CreditRefresh,
		"slow check": t.SlowCheck, "switch wait": t.SwitchWait, "extra tick": t.ExtraTick,
		"starve time": t.StarveAfter,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v must be positive", name, d))
		}
	}
	for name, d := range map[string]time.Duration{
		"serve grace": t.ServeGrace, "state interval": t.StateEvery, "credit warm-up": t.CreditWarmup,
		"status age": t.StatusMaxAge, "credit stuck time": t.CreditStuckAfter, "slow ban": t.SlowBan, "extra backoff": t.ExtraBackoff,
		"slow time": t.Slow.After, "slow lag": t.Slow.Lag, "clear lag": t.Slow.ClearLag, "extra idle": t.ExtraDrop.Idle,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", name, d))
		}
	}
	for name, x := range map[string]float64{
		"credit stuck share": t.CreditStuck, "slow share": t.Slow.Share, "clear share": t.Slow.ClearShare,
		"probe share": t.ProbeShare, "tail share": t.TailShare, "extra duplicate share": t.ExtraDrop.DupShare,
		"starve share": t.StarveShare, "bound share": t.BoundShare,
	} {
		if x < 0 || x > 1 {
			errs = append(errs, fmt.Errorf("%s %g outside [0, 1]", name, x))
		}
	}
	if t.WindowBlocks < 1 {
		errs = append(errs, fmt.Errorf("window of %d blocks", t.WindowBlocks))
	}
	if t.MaxExtra < 0 {
		errs = append(errs, fmt.Errorf("max extra upstreams %d is negative", t.MaxExtra))
	}
	if t.UpstreamBuffer < 4<<10 || t.ChildBuffer < 4<<10 {
		errs = append(errs, fmt.Errorf("stream buffers %d, %d below 4 KiB", t.UpstreamBuffer, t.ChildBuffer))
	}
	if err := t.Admit.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tuning: %w", err)
	}
	return nil
}

// WithTuning replaces the node's tuning (start from DefaultTuning and
// change what you need). New checks it with Validate.
func WithTuning(t Tuning) Option {
	return func(c *config) error {
		c.tuning = t
		return nil
	}
}
