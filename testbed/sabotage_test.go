package main

import (
	"flag"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/romap2p/romap2p/internal/hostile"
)

func TestParseRunSystemsWithSaboteur(t *testing.T) {
	parse := func(args ...string) ([]string, []string, error) {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		systems := fs.String("systems", "romap2p,bittorrent", "")
		saboteur := fs.String("saboteur", "", "")
		sabotage := fs.String("sabotage", "all,honest", "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return parseRunSystems(*systems, *saboteur, *sabotage, fs)
	}
	sys, modes, err := parse("--systems", "romap2p,http", "--saboteur", "UCLA", "--sabotage", "all,1%,honest")
	if want := []string{"romap2p+sab-all", "romap2p+sab-1%", "romap2p+sab-honest", "http"}; err != nil || !slices.Equal(sys, want) || len(modes) != 3 {
		t.Errorf("systems %v, modes %v, %v; want %v", sys, modes, err, want)
	}
	sys, _, err = parse("--systems", "romap2p", "--saboteur", "UCLA")
	if want := []string{"romap2p+sab-all", "romap2p+sab-honest"}; err != nil || !slices.Equal(sys, want) {
		t.Errorf("default modes: %v, %v", sys, err)
	}
	if sys, modes, err := parse("--systems", "romap2p"); err != nil || !slices.Equal(sys, []string{"romap2p"}) || modes != nil {
		t.Errorf("without a saboteur: %v, %v, %v", sys, modes, err)
	}
	for _, bad := range [][]string{
		{"--systems", "romap2p", "--sabotage", "all"},                           // no --saboteur
		{"--systems", "http", "--saboteur", "UCLA"},                             // no romap2p system
		{"--systems", "romap2p", "--saboteur", "UCLA", "--sabotage", "evil"},    // unknown mode
		{"--systems", "romap2p", "--saboteur", "UCLA", "--sabotage", "all,all"}, // twice
		{"--systems", "romap2p", "--saboteur", "UCLA", "--sabotage", ""},
	} {
		if _, _, err := parse(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if b, m := splitSabotage("romap2p-tree+sab-later"); b != "romap2p-tree" || m != "later" {
		t.Errorf("splitSabotage = %q, %q", b, m)
	}
	if b, m := splitSabotage("romap2p"); b != "romap2p" || m != "" {
		t.Errorf("splitSabotage = %q, %q", b, m)
	}
}

// cannedSabotage is a run of mode all: A blamed the saboteur 0.3 s after its
// first corrupt source symbol, B did not but its stream ended 0.5 s after
// (unread), C was sent its first corrupt source symbol after it completed
// (late), D blamed an honest peer.
func cannedSabotage(t *testing.T) *sabotageResult {
	t.Helper()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ts := func(s float64) string { return at(s).Format(time.RFC3339Nano) }
	peerHost := map[string]string{"pA": "A", "pB": "B", "pC": "C", "pD": "D", "pS": "S", "pSrc": "src"}
	rec := &sabRecord{Peer: "pS", Record: hostile.Record{Mode: "all", Symbols: 900, Corrupted: 900,
		Victims:  map[string]time.Time{"pA": at(1), "pB": at(2), "pC": at(9)},
		LastSent: map[string]time.Time{"pA": at(1.4), "pB": at(2.5), "pC": at(9.1), "pD": at(3)}}}
	seen := map[string]peerSeen{
		"A": {Completed: at(8), Blamed: []blameSeen{{Peer: "pS", Reason: "bad source symbol", At: ts(1.3)}}},
		"B": {Completed: at(8)},
		"C": {Completed: at(5)},
		"D": {Completed: at(8), Blamed: []blameSeen{{Peer: "pSrc", Reason: "bad", At: ts(4)}}},
		"S": {Completed: at(7)},
	}
	return judgeSabotage("all", "S", "pS", rec, seen, peerHost)
}

func TestJudgeSabotage(t *testing.T) {
	sr := cannedSabotage(t)
	if len(sr.Victims) != 2 || sr.Victims[0].Host != "A" || sr.Victims[1].Host != "B" {
		t.Fatalf("victims %+v", sr.Victims)
	}
	if sr.BlamedSaboteur != 1 || sr.BlamedBy != 1 || sr.Late != 1 || !sr.Victims[1].Unread || sr.missed() != 0 {
		t.Errorf("blamed %d, late %d, unread %v, missed %d", sr.BlamedSaboteur, sr.Late, sr.Victims[1].Unread, sr.missed())
	}
	if math.Abs(sr.WorstStopS-0.3) > 1e-9 || sr.Victims[0].StopS == nil {
		t.Errorf("worst stop %v", sr.WorstStopS)
	}
	if sr.HonestBlamed != 1 || !strings.Contains(sr.HonestBlames[0], "D blamed src") {
		t.Errorf("honest blamed %d: %v", sr.HonestBlamed, sr.HonestBlames)
	}
	// The same blames in mode honest: every blame is of an honest peer.
	rec := &sabRecord{Peer: "pS", Record: hostile.Record{Mode: "honest"}}
	seen := map[string]peerSeen{"A": {Blamed: []blameSeen{{Peer: "pS", At: "x"}}}}
	if h := judgeSabotage("honest", "S", "pS", rec, seen, nil); h.HonestBlamed != 1 || len(h.Victims) != 0 {
		t.Errorf("mode honest: %+v", h)
	}
	// The stop runs from the first write of the symbol the blame names: the
	// first corrupt symbol went on a stream that ended unread.
	rec = &sabRecord{Peer: "pS", Record: hostile.Record{Victims: map[string]time.Time{"pA": time.Unix(10, 0)}, LastSent: map[string]time.Time{"pA": time.Unix(13, 0)},
		Writes: map[string][]hostile.SymbolWrite{"pA": {{Block: 0, ESI: 5, At: time.Unix(10, 0)}, {Block: 1, ESI: 9, At: time.Unix(12, 0)}}}}}
	blameAt := func(sym *symbolSeen) map[string]peerSeen {
		return map[string]peerSeen{"A": {Blamed: []blameSeen{{Peer: "pS", At: time.Unix(12, 250e6).Format(time.RFC3339Nano), Symbol: sym}}}}
	}
	named := judgeSabotage("all", "S", "pS", rec, blameAt(&symbolSeen{Block: 1, ESI: 9}), map[string]string{"pA": "A"})
	if v := named.Victims[0]; *v.StopS != 0.25 || *v.FirstStopS != 2.25 || named.WorstStopS != 0.25 {
		t.Errorf("named symbol: stop %v, from the first %v, worst %v", *v.StopS, *v.FirstStopS, named.WorstStopS)
	}
	for _, sym := range []*symbolSeen{nil, {Block: 1, ESI: 10}} {
		if v := judgeSabotage("all", "S", "pS", rec, blameAt(sym), map[string]string{"pA": "A"}).Victims[0]; *v.StopS != 2.25 {
			t.Errorf("blame naming %+v: stop %v, want 2.25 (from the first corrupt symbol)", sym, *v.StopS)
		}
	}
	// A victim written to for 3 s without blaming the saboteur was missed.
	rec = &sabRecord{Peer: "pS", Record: hostile.Record{Victims: map[string]time.Time{"pA": time.Unix(10, 0)}, LastSent: map[string]time.Time{"pA": time.Unix(13, 0)}}}
	if m := judgeSabotage("all", "S", "pS", rec, map[string]peerSeen{"A": {}}, map[string]string{"pA": "A"}); m.missed() != 1 {
		t.Errorf("missed %d, want 1", m.missed())
	}
}

func TestSabotageReport(t *testing.T) {
	res := &result{Receivers: map[string]receiverBound{}, Systems: map[string]*systemResult{}}
	res.Case.Matrix, res.Case.Source, res.Case.SizeBytes, res.Case.Scale = "table1.tsv", "UW", 8<<20, 0.2
	res.Case.Saboteur, res.Case.Sabotage = "S", []string{"all", "honest"}
	res.Case.Systems = []string{"romap2p+sab-all", "romap2p+sab-honest"}
	mk := func(whole float64, sr *sabotageResult) *runResult {
		rr := &runResult{Run: 1, WholeS: whole, Receivers: map[string]*recvResult{}, Sabotage: sr}
		for _, h := range []string{"A", "B", "C", "D"} {
			rr.Receivers[h] = &recvResult{Seconds: whole, OK: true}
		}
		return rr
	}
	all := cannedSabotage(t)
	all.Saboteur = &recvResult{Seconds: 7}
	res.Systems["romap2p+sab-all"] = &systemResult{Runs: []*runResult{mk(11, all)}}
	res.Systems["romap2p+sab-honest"] = &systemResult{Runs: []*runResult{mk(10, &sabotageResult{Mode: "honest", Host: "S", Victims: []victimResult{}})}}
	md := markdown(res)
	for _, want := range []string{
		"## Sabotage: a saboteur on S",
		"| romap2p+sab-all | 1 | 11.00 | 1.10 | 900 | 2 | 1 | 1 | 0 | 1 | 0.300 | 1 | 1 | 4/4 | 7.0 |",
		"| romap2p+sab-honest | 1 | 10.00 | 1.00 | 0 | 0 | 0 | 0 | 0 | 0 | 0.000 | 0 | 0 | 4/4 | – |",
		"D blamed src: bad",
		"A 0.300 s, B unread (written to 0.500 s after)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("result.md lacks %q:\n%s", want, md)
		}
	}
	if bad := sabotageFailures(res); len(bad) != 1 || !strings.Contains(bad[0], "1 blames of honest peers") {
		t.Errorf("failures %v", bad)
	}
}
