package treebuild

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Candidate is what a peer knows about one possible parent in one stripe:
// the candidate's own status report plus this peer's measurement of it.
type Candidate struct {
	// ID is the candidate's peer ID.
	ID peer.ID
	// Width is the rate in bytes per second at which the candidate reports
	// receiving new symbols; +Inf for the source and for complete peers.
	Width float64
	// Depth is the candidate's number of hops below the source.
	Depth int
	// Path lists the candidate's ancestors from the source down to the
	// candidate itself.
	Path []peer.ID
	// Children is how many children the candidate feeds in this stripe, and
	// MaxChildren how many it accepts (0: it takes none).
	Children, MaxChildren int
	// Uplink is the candidate's uplink capacity in bytes per second, 0 when
	// unknown. Carried is what its uplink already sends, all stripes
	// together; for the current parent, leave this peer's own share out.
	Uplink, Carried float64
	// Measured is the goodput in bytes per second this peer measured while
	// receiving from the candidate (0: never measured), MeasuredAt when, and
	// MeasuredWidth the Width the candidate reported at that time.
	Measured      float64
	MeasuredAt    time.Time
	MeasuredWidth float64
	// Failed is when the candidate last failed this peer (refused it, broke
	// a stream, stalled, fed bad symbols); zero when never.
	Failed time.Time
}

// Estimate returns the width this peer could expect under c from c's report
// alone: c's width, bounded by its spare uplink when the uplink is known. A
// new child gets at least a fair share of the uplink among c's children.
func (c Candidate) Estimate() float64 {
	est := c.Width
	if c.Uplink > 0 {
		spare := c.Uplink - c.Carried
		fair := c.Uplink / float64(c.Children+1)
		est = math.Min(est, math.Max(spare, fair))
	}
	return est
}

// Choice is a ranked candidate.
type Choice struct {
	Candidate
	// Score is the width this peer expects under the candidate: the
	// measurement bounded by the current estimate, or the estimate alone.
	Score float64
	// NeedsProbe is set when Score does not rest on a fresh measurement.
	NeedsProbe bool
}

// Chooser holds the parameters of the decentralised parent choice. Its
// methods are pure: they read the candidates and the time they are given,
// keep no state and are safe for concurrent use.
type Chooser struct {
	hysteresis    float64
	urgentGain    float64
	tieTolerance  float64
	minDwell      time.Duration
	probeWindow   time.Duration
	probeInterval time.Duration
	probesPerRnd  int
	staleAge      time.Duration
	stallTimeout  time.Duration
	failBackoff   time.Duration
}

// Option configures a Chooser.
type Option func(*Chooser)

// WithHysteresis sets the relative gain a measured candidate must offer over
// the current goodput before the peer switches (default 0.1). A settled
// peer then receives at least 1/(1+h) of the best width it has measured;
// since losses compound down the tree (a parent held back by the hysteresis
// holds back its subtree too), h must stay well below the tolerated loss.
func WithHysteresis(h float64) Option { return func(c *Chooser) { c.hysteresis = h } }

// WithUrgentGain sets the relative gain above which a switch ignores the
// minimum dwell time (default 0.5), so a peer that joined under a poor
// parent climbs quickly while small gains wait.
func WithUrgentGain(g float64) Option { return func(c *Chooser) { c.urgentGain = g } }

// WithTieTolerance sets how close two scores must be to count as a tie,
// broken by smaller depth and then fewer children (default 0.03).
func WithTieTolerance(t float64) Option { return func(c *Chooser) { c.tieTolerance = t } }

// WithMinDwell sets the minimum time between two switches made on
// measurements whose gain is below the urgent gain (default 10 s).
func WithMinDwell(d time.Duration) Option { return func(c *Chooser) { c.minDwell = d } }

// WithProbeWindow sets how long a probe receives from a candidate (default 1 s).
func WithProbeWindow(d time.Duration) Option { return func(c *Chooser) { c.probeWindow = d } }

// WithProbeInterval sets how often a peer re-evaluates its parent (default 5 s).
func WithProbeInterval(d time.Duration) Option { return func(c *Chooser) { c.probeInterval = d } }

// WithProbesPerRound sets how many candidates one re-evaluation probes (default 2).
func WithProbesPerRound(n int) Option { return func(c *Chooser) { c.probesPerRnd = n } }

// WithStaleAge sets the age after which a measurement must be renewed
// before a switch relies on it (default 60 s).
func WithStaleAge(d time.Duration) Option { return func(c *Chooser) { c.staleAge = d } }

// WithStallTimeout sets how long a parent may send nothing before it counts
// as stalled (default 2 s).
func WithStallTimeout(d time.Duration) Option { return func(c *Chooser) { c.stallTimeout = d } }

// WithFailBackoff sets how long a failed candidate is left aside (default 30 s).
func WithFailBackoff(d time.Duration) Option { return func(c *Chooser) { c.failBackoff = d } }

// NewChooser returns a Chooser with the defaults changed by opts.
func NewChooser(opts ...Option) (*Chooser, error) {
	c := &Chooser{
		hysteresis:    0.1,
		urgentGain:    0.5,
		tieTolerance:  0.03,
		minDwell:      10 * time.Second,
		probeWindow:   time.Second,
		probeInterval: 5 * time.Second,
		probesPerRnd:  2,
		staleAge:      60 * time.Second,
		stallTimeout:  2 * time.Second,
		failBackoff:   30 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	var errs []error
	if c.hysteresis < 0 || c.urgentGain < c.hysteresis {
		errs = append(errs, fmt.Errorf("hysteresis %g must be >= 0 and <= urgent gain %g", c.hysteresis, c.urgentGain))
	}
	if c.tieTolerance < 0 || c.tieTolerance >= 1 {
		errs = append(errs, fmt.Errorf("tie tolerance %g outside [0,1)", c.tieTolerance))
	}
	if c.minDwell < 0 || c.probeWindow <= 0 || c.probeInterval <= 0 || c.staleAge <= 0 || c.stallTimeout <= 0 || c.failBackoff < 0 {
		errs = append(errs, errors.New("durations must be positive (dwell and fail backoff may be 0)"))
	}
	if c.probesPerRnd < 1 {
		errs = append(errs, fmt.Errorf("probes per round %d < 1", c.probesPerRnd))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new chooser: %w", err)
	}
	return c, nil
}

// ProbeWindow is how long a probe should receive from a candidate.
func (c *Chooser) ProbeWindow() time.Duration { return c.probeWindow }

// ProbeInterval is how often a peer should call NextProbe and re-evaluate.
func (c *Chooser) ProbeInterval() time.Duration { return c.probeInterval }

// FailBackoff is how long a candidate that failed is left out.
func (c *Chooser) FailBackoff() time.Duration { return c.failBackoff }

// StallTimeout is how long a silent parent is tolerated.
func (c *Chooser) StallTimeout() time.Duration { return c.stallTimeout }

// eligible reports whether self may take cand as parent: not itself, not a
// descendant (self on cand's path), not failed recently, and with room for a
// child unless cand already is the current parent.
func (c *Chooser) eligible(self, current peer.ID, cand *Candidate, now time.Time) bool {
	switch {
	case cand.ID == self || OnPath(cand.Path, self):
		return false
	case !cand.Failed.IsZero() && now.Sub(cand.Failed) < c.failBackoff:
		return false
	case cand.ID != current && cand.Children >= cand.MaxChildren:
		return false
	}
	return true
}

// score rates a candidate and says whether a probe should confirm it.
func (c *Chooser) score(cand *Candidate, now time.Time) (float64, bool) {
	est := cand.Estimate()
	if cand.Measured <= 0 || cand.MeasuredAt.IsZero() {
		return est, true
	}
	s := math.Min(cand.Measured, est)
	if now.Sub(cand.MeasuredAt) > c.staleAge {
		return s, true
	}
	// The probe was limited by the candidate's width, not by the link, and
	// that width has grown since: the link may carry more now.
	widthLimited := cand.Measured >= cand.MeasuredWidth*(1-c.tieTolerance)
	if widthLimited && est > cand.Measured*(1+c.hysteresis) {
		return s, true
	}
	return s, false
}

// Rank returns the candidates self may take as parent, best first. Scores
// within the tie tolerance of each other rank by smaller depth, then fewer
// children, then higher score, then peer ID. current is the present parent
// ("" for none); it stays eligible even when it reports itself full.
func (c *Chooser) Rank(self, current peer.ID, cands []Candidate, now time.Time) []Choice {
	var out []Choice
	for i := range cands {
		if !c.eligible(self, current, &cands[i], now) {
			continue
		}
		s, probe := c.score(&cands[i], now)
		if s <= 0 {
			continue
		}
		out = append(out, Choice{Candidate: cands[i], Score: s, NeedsProbe: probe})
	}
	tie := func(a, b float64) bool {
		if math.IsInf(a, 1) || math.IsInf(b, 1) {
			return a == b
		}
		return math.Abs(a-b) <= c.tieTolerance*math.Max(a, b)
	}
	slices.SortStableFunc(out, func(a, b Choice) int {
		if !tie(a.Score, b.Score) {
			return -cmp.Compare(a.Score, b.Score)
		}
		return cmp.Or(
			cmp.Compare(a.Depth, b.Depth),
			cmp.Compare(a.Children, b.Children),
			-cmp.Compare(a.Score, b.Score),
			cmp.Compare(a.ID, b.ID),
		)
	})
	return out
}

// Best returns the best parent for self among cands (see Rank), false when
// none is eligible. A choice flagged NeedsProbe should be probed before a
// peer that has a working parent switches to it; a peer without a parent
// (joining, or after failover) takes it at once.
func (c *Chooser) Best(self, current peer.ID, cands []Candidate, now time.Time) (Choice, bool) {
	r := c.Rank(self, current, cands, now)
	if len(r) == 0 {
		return Choice{}, false
	}
	return r[0], true
}

// ShouldSwitch decides whether a peer receiving currentGoodput bytes/s from
// current (or nothing: current == "") should move to best now, having last
// switched at lastSwitch (zero: never). Without a parent any choice is taken.
// Otherwise best must rest on a fresh measurement and beat the current
// goodput by the hysteresis; within the minimum dwell after the last switch
// only a gain above the urgent gain counts. The caller switches
// make-before-break: it keeps the old parent until the new one delivers.
func (c *Chooser) ShouldSwitch(current peer.ID, currentGoodput float64, best Choice, now, lastSwitch time.Time) bool {
	switch {
	case best.ID == "" || best.ID == current:
		return false
	case current == "":
		return true
	case best.NeedsProbe:
		return false
	case currentGoodput <= 0:
		return true
	case best.Score < currentGoodput*(1+c.hysteresis):
		return false
	case !lastSwitch.IsZero() && now.Sub(lastSwitch) < c.minDwell:
		return best.Score >= currentGoodput*(1+c.urgentGain)
	}
	return true
}

// Reevaluate is the periodic decision of a peer receiving currentGoodput
// bytes/s from current ("" for none), having last switched on a measurement
// at lastSwitch: it takes the best candidate whose score rests on a fresh
// measurement (any candidate when the peer has no parent) and reports
// whether ShouldSwitch moves the peer there. Call it after every probe
// completes and every probe interval.
func (c *Chooser) Reevaluate(self, current peer.ID, currentGoodput float64, cands []Candidate, now, lastSwitch time.Time) (Choice, bool) {
	for _, ch := range c.Rank(self, current, cands, now) {
		if ch.NeedsProbe && current != "" {
			continue
		}
		return ch, c.ShouldSwitch(current, currentGoodput, ch, now, lastSwitch)
	}
	return Choice{}, false
}

// NextProbe returns the candidates to probe in this re-evaluation round, at
// most the configured number: never-measured ones first (highest estimate
// first), then those whose measurement is stale or outgrown (oldest first).
// A candidate whose estimate could not beat the current goodput by the
// hysteresis is not worth a probe.
func (c *Chooser) NextProbe(self, current peer.ID, currentGoodput float64, cands []Candidate, now time.Time) []peer.ID {
	var fresh, stale []Choice
	for _, ch := range c.Rank(self, current, cands, now) {
		if ch.ID == current || !ch.NeedsProbe || ch.Estimate() <= currentGoodput*(1+c.hysteresis) {
			continue
		}
		if ch.MeasuredAt.IsZero() {
			fresh = append(fresh, ch)
		} else {
			stale = append(stale, ch)
		}
	}
	slices.SortStableFunc(fresh, func(a, b Choice) int { return -cmp.Compare(a.Estimate(), b.Estimate()) })
	slices.SortStableFunc(stale, func(a, b Choice) int { return a.MeasuredAt.Compare(b.MeasuredAt) })
	var ids []peer.ID
	for _, ch := range append(fresh, stale...) {
		if len(ids) == c.probesPerRnd {
			break
		}
		ids = append(ids, ch.ID)
	}
	return ids
}

// Stalled reports whether a parent that last delivered a symbol at
// lastSymbolAt has been silent too long; the peer then fails over at once
// to its best remaining candidate.
func (c *Chooser) Stalled(lastSymbolAt, now time.Time) bool {
	return now.Sub(lastSymbolAt) > c.stallTimeout
}
