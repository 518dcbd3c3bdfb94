package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/romap2p/romap2p/internal/hostile"
)

// A sabotage run puts a saboteur on one host: the romap2p binary built with
// the romap2p_saboteur tag, whose get corrupts the symbols it relays as
// ROMAP2P_SABOTAGE says. Each mode runs as a system of its own, named
// SYSTEM+sab-MODE; the mode honest is the twin every other mode is set
// against.

// sabotageModes are the modes ROMAP2P_SABOTAGE takes (internal/hostile).
var sabotageModes = []string{"honest", "all", "1%", "repair", "later"}

// sabotageSep joins a romap2p system and a sabotage mode in a system name.
const sabotageSep = "+sab-"

// stopLimit is how soon a victim must blame the saboteur after the first
// corrupt source symbol written to it; a victim that did not blame it but
// was still sent symbols by it for longer than this was missed.
const stopLimit = 2 * time.Second

// parseSabotage reads --sabotage: a comma list of modes.
func parseSabotage(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(sabotageModes, p) {
			return nil, fmt.Errorf("--sabotage: unknown mode %q (known: %s)", p, strings.Join(sabotageModes, ", "))
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("--sabotage: mode %q named twice", p)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("--sabotage names no mode")
	}
	return out, nil
}

// withSabotage replaces every romap2p system of systems by one system per
// mode (romap2p+sab-all, romap2p+sab-honest, ...); the other systems stay.
func withSabotage(systems, modes []string) ([]string, error) {
	var out []string
	found := false
	for _, s := range systems {
		if !strings.HasPrefix(s, "romap2p") {
			out = append(out, s)
			continue
		}
		found = true
		for _, m := range modes {
			out = append(out, s+sabotageSep+m)
		}
	}
	if !found {
		return nil, errors.New("--saboteur needs a romap2p system in --systems")
	}
	return out, nil
}

// splitSabotage returns a system name's base system and sabotage mode
// ("" for a system without a saboteur).
func splitSabotage(system string) (base, mode string) {
	if b, m, ok := strings.Cut(system, sabotageSep); ok {
		return b, m
	}
	return system, ""
}

// sabRecord is the saboteur's record file (cmd/romap2p/sabotage.go): the
// saboteur's own record, its peer ID, and how many streams went out
// honest.
type sabRecord struct {
	hostile.Record
	Peer      string `json:"peer"`
	Unwrapped int    `json:"unwrapped"`
}

func readSabRecord(path string) (*sabRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("saboteur record: %w", err)
	}
	var r sabRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("saboteur record %s: %w", path, err)
	}
	return &r, nil
}

// blameSeen is one blame in a get's --json output.
type blameSeen struct {
	Peer   string `json:"peer"`
	Reason string `json:"reason"`
	At     string `json:"at"`
	// Symbol is the source symbol that failed its tree, when that was the
	// proof.
	Symbol *symbolSeen `json:"symbol"`
}

// symbolSeen names the symbol of a blame: its block and ESI.
type symbolSeen struct {
	Block int    `json:"block"`
	ESI   uint32 `json:"esi"`
}

// peerSeen is what the harness saw of one romap2p receiver in a sabotage
// run: its blames and when it completed (zero: it did not).
type peerSeen struct {
	Completed time.Time
	Blamed    []blameSeen
}

// victimResult is one honest receiver the saboteur wrote a corrupt source
// symbol to before the receiver completed.
type victimResult struct {
	Host string `json:"host"`
	// FirstCorrupt is when the first corrupt source symbol was written to
	// it, LastSent when the last symbol of any kind was.
	FirstCorrupt time.Time `json:"first_corrupt"`
	LastSent     time.Time `json:"last_sent"`
	Blamed       bool      `json:"blamed"`
	// StopS is from the first write of the corrupt source symbol its
	// blame names (FirstCorrupt when the blame names none the saboteur
	// listed) to its blame of the saboteur: a symbol written to a stream
	// that ended before the victim read it was never taken. FirstStopS is
	// from FirstCorrupt, whatever the blame names.
	StopS      *float64 `json:"stop_s,omitempty"`
	FirstStopS *float64 `json:"first_stop_s,omitempty"`
	// Unread: it did not blame the saboteur, and the saboteur wrote to it
	// for at most 2 s after the first corrupt source symbol (the symbol
	// was in flight when its stream ended). Missed: it did not blame the
	// saboteur although it was written to for longer.
	Unread bool `json:"unread,omitempty"`
	Missed bool `json:"missed,omitempty"`
}

// sabotageResult is what a run with a saboteur adds to its runResult.
type sabotageResult struct {
	Mode string `json:"mode"`
	Host string `json:"host"`
	Peer string `json:"peer"`
	// Saboteur is the saboteur host's own download (not in the run's
	// receivers, nor in its whole_s).
	Saboteur  *recvResult `json:"saboteur"`
	Symbols   int         `json:"symbols"`
	Corrupted int         `json:"corrupted"`
	// Unwrapped counts streams that went out honest because they opened
	// before the saboteur knew the file's layout.
	Unwrapped int            `json:"unwrapped,omitempty"`
	Victims   []victimResult `json:"victims"`
	// Late counts receivers sent their first corrupt source symbol only
	// after they completed (never read: not victims).
	Late int `json:"late"`
	// BlamedSaboteur counts victims that blamed the saboteur; BlamedBy
	// every honest receiver that did (a corrupt repair symbol makes no
	// victim but may be blamed too).
	BlamedSaboteur int `json:"blamed_saboteur"`
	BlamedBy       int `json:"blamed_by"`
	// HonestBlamed counts blames of honest peers, by anyone: in mode
	// honest every blame, else any blame not of the saboteur, and any
	// blame by the saboteur (which fetches honestly).
	HonestBlamed int      `json:"honest_blamed"`
	HonestBlames []string `json:"honest_blames,omitempty"`
	WorstStopS   float64  `json:"worst_stop_s"`
	Error        string   `json:"error,omitempty"`
}

// judgeSabotage sets the saboteur's record against what the honest
// receivers saw. peerHost maps peer IDs to host names; recv holds every
// romap2p receiver, the saboteur's host included.
func judgeSabotage(mode, host, peerID string, rec *sabRecord, recv map[string]peerSeen, peerHost map[string]string) *sabotageResult {
	sr := &sabotageResult{Mode: mode, Host: host, Peer: peerID, Victims: []victimResult{}}
	name := func(id string) string {
		if h, ok := peerHost[id]; ok {
			return h
		}
		return id
	}
	for _, h := range slices.Sorted(maps.Keys(recv)) {
		by := false
		for _, bl := range recv[h].Blamed {
			by = by || (h != host && bl.Peer == peerID)
			if h == host || mode == "honest" || bl.Peer != peerID {
				sr.HonestBlamed++
				sr.HonestBlames = append(sr.HonestBlames, fmt.Sprintf("%s blamed %s: %s", h, name(bl.Peer), bl.Reason))
			}
		}
		if by && mode != "honest" {
			sr.BlamedBy++
		}
	}
	if rec == nil {
		return sr
	}
	sr.Symbols, sr.Corrupted, sr.Unwrapped = rec.Symbols, rec.Corrupted, rec.Unwrapped
	if rec.Peer != "" && rec.Peer != peerID {
		sr.Error = fmt.Sprintf("the record is of peer %s, not of %s's %s", rec.Peer, host, peerID)
	}
	for id, first := range rec.Victims {
		h := name(id)
		seen, ok := recv[h]
		if !ok || h == host {
			continue
		}
		if !seen.Completed.IsZero() && first.After(seen.Completed) {
			sr.Late++
			continue
		}
		v := victimResult{Host: h, FirstCorrupt: first, LastSent: rec.LastSent[id]}
		for _, bl := range seen.Blamed {
			if bl.Peer != peerID {
				continue
			}
			v.Blamed = true
			if at, err := time.Parse(time.RFC3339Nano, bl.At); err == nil {
				from := first
				if bl.Symbol != nil {
					for _, w := range rec.Writes[id] {
						if int(w.Block) == bl.Symbol.Block && w.ESI == bl.Symbol.ESI {
							from = w.At
							break
						}
					}
				}
				s, fs := at.Sub(from).Seconds(), at.Sub(first).Seconds()
				v.StopS, v.FirstStopS = &s, &fs
				sr.WorstStopS = math.Max(sr.WorstStopS, s)
			}
		}
		if v.Blamed {
			sr.BlamedSaboteur++
		} else if v.LastSent.Sub(first) > stopLimit {
			v.Missed = true
		} else {
			v.Unread = true
		}
		sr.Victims = append(sr.Victims, v)
	}
	sort.Slice(sr.Victims, func(i, j int) bool { return sr.Victims[i].Host < sr.Victims[j].Host })
	return sr
}

// missed counts the victims that did not blame the saboteur in time.
func (sr *sabotageResult) missed() int {
	n := 0
	for _, v := range sr.Victims {
		if v.Missed || (v.StopS != nil && *v.StopS > stopLimit.Seconds()) {
			n++
		}
	}
	return n
}

// sabotageFailures lists what a result's sabotage runs got wrong: blames
// of honest peers, victims that did not blame the saboteur in time, and
// runs without a saboteur record.
func sabotageFailures(res *result) []string {
	var out []string
	for _, s := range systemsOf(res) {
		for _, r := range res.Systems[s].Runs {
			sr := r.Sabotage
			if sr == nil {
				continue
			}
			if sr.HonestBlamed > 0 {
				out = append(out, fmt.Sprintf("%s run %d: %d blames of honest peers", s, r.Run, sr.HonestBlamed))
			}
			if n := sr.missed(); n > 0 {
				out = append(out, fmt.Sprintf("%s run %d: %d victims did not blame the saboteur within %v", s, r.Run, n, stopLimit))
			}
			if sr.Error != "" {
				out = append(out, fmt.Sprintf("%s run %d: %s", s, r.Run, sr.Error))
			}
		}
	}
	return out
}

// sabotageMarkdown renders result.md's sabotage section ("" when no run had
// a saboteur).
func sabotageMarkdown(res *result) string {
	var systems []string
	for _, s := range systemsOf(res) {
		if _, m := splitSabotage(s); m != "" {
			systems = append(systems, s)
		}
	}
	if len(systems) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Sabotage: a saboteur on %s\n\n", res.Case.Saboteur)
	b.WriteString("The saboteur is a receiver like the others, built with the romap2p_saboteur tag and corrupting what it relays as its mode says; " +
		"its own download is not in the swarm's time. Swarm: from the first honest receiver's launch to the last one's completion; " +
		"/ twin: that time over the same run index with the saboteur honest; victims: honest receivers sent a corrupt source symbol before they completed; " +
		"blamed: victims that blamed the saboteur; unread: victims that did not, whose stream from it ended within 2 s of that symbol (in flight); " +
		"missed: victims that did not blame it in 2 s; late: receivers sent their first corrupt source symbol only once complete (not victims); " +
		"stop: the victim's blame minus the first write to it of the corrupt source symbol the blame names (else of the first corrupt source symbol written to it; one clock), which counts the symbol's time in buffers and on the link; blamed by: honest receivers that blamed the saboteur, victims or not; " +
		"honest blamed: blames of honest peers (must be 0); files: honest receivers with a verified copy.\n\n")
	b.WriteString("| system | run | swarm s | / twin | corrupt symbols | victims | blamed | unread | missed | late | worst stop s | blamed by | honest blamed | files | saboteur done s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range systems {
		base, _ := splitSabotage(s)
		twin := res.Systems[base+sabotageSep+"honest"]
		for _, r := range res.Systems[s].Runs {
			sr := r.Sabotage
			if sr == nil {
				continue
			}
			ratio := "–"
			if twin != nil {
				for _, tr := range twin.Runs {
					if tr.Run == r.Run && tr.WholeS > 0 && r.WholeS > 0 {
						ratio = fmt.Sprintf("%.2f", r.WholeS/tr.WholeS)
					}
				}
			}
			unread := 0
			for _, v := range sr.Victims {
				if v.Unread {
					unread++
				}
			}
			own := "–"
			if sr.Saboteur != nil && sr.Saboteur.Seconds > 0 {
				own = fmt.Sprintf("%.1f", sr.Saboteur.Seconds)
			}
			whole := "–"
			if r.WholeS > 0 {
				whole = fmt.Sprintf("%.2f", r.WholeS)
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %d | %d | %d | %d | %d | %.3f | %d | %d | %d/%d | %s |\n",
				s, r.Run, whole, ratio, sr.Corrupted, len(sr.Victims), sr.BlamedSaboteur, unread, sr.missed(), sr.Late,
				sr.WorstStopS, sr.BlamedBy, sr.HonestBlamed, countOK(r), len(r.Receivers), own)
		}
	}
	var notes []string
	for _, s := range systems {
		for _, r := range res.Systems[s].Runs {
			sr := r.Sabotage
			if sr == nil {
				continue
			}
			for _, h := range sr.HonestBlames {
				notes = append(notes, fmt.Sprintf("%s run %d: %s", s, r.Run, h))
			}
			if sr.Error != "" {
				notes = append(notes, fmt.Sprintf("%s run %d: %s", s, r.Run, sr.Error))
			}
			if sr.Unwrapped > 0 {
				notes = append(notes, fmt.Sprintf("%s run %d: %d streams left the saboteur honest (opened before it knew the file's layout)", s, r.Run, sr.Unwrapped))
			}
			var stops []string
			for _, v := range sr.Victims {
				switch {
				case v.StopS != nil && v.FirstStopS != nil && *v.FirstStopS-*v.StopS > 0.0005:
					stops = append(stops, fmt.Sprintf("%s %.3f s (%.3f s from the first corrupt source symbol written to it)", v.Host, *v.StopS, *v.FirstStopS))
				case v.StopS != nil:
					stops = append(stops, fmt.Sprintf("%s %.3f s", v.Host, *v.StopS))
				case v.Unread:
					stops = append(stops, fmt.Sprintf("%s unread (written to %.3f s after)", v.Host, v.LastSent.Sub(v.FirstCorrupt).Seconds()))
				default:
					stops = append(stops, fmt.Sprintf("%s MISSED (written to %.3f s after)", v.Host, v.LastSent.Sub(v.FirstCorrupt).Seconds()))
				}
			}
			if len(stops) > 0 {
				notes = append(notes, fmt.Sprintf("%s run %d, stop per victim: %s", s, r.Run, strings.Join(stops, ", ")))
			}
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "  \n") + "\n")
	}
	return b.String()
}

// seen returns what the harness saw of a romap2p receiver: its blames and
// its completion (from get's JSON line, else the line's arrival).
func (p *proc) seen() peerSeen {
	secs, _, _, info, _ := p.result()
	var s peerSeen
	if v, ok := info["blamed"].([]blameSeen); ok {
		s.Blamed = v
	}
	if v, ok := info["completed"].(string); ok && v != "" {
		s.Completed, _ = time.Parse(time.RFC3339Nano, v)
	}
	if s.Completed.IsZero() && secs > 0 {
		s.Completed = p.start.Add(time.Duration(secs * float64(time.Second)))
	}
	return s
}
