package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/romap2p/romap2p/treebuild"
)

func TestLoadMatrixCapsAndScale(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.tsv")
	body := "# access c 5\nreceiver\\sender\ta\tb\tc\na\t-\t40\t10\nb\t30\t-\t-\nc\t20\t-\t-\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := loadMatrix(p, 100, 50, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Index("a")
	b, _ := m.Index("b")
	c, _ := m.Index("c")
	checks := []struct {
		name      string
		got, want float64
	}{
		{"a uplink", treebuild.Mbit(m.Uplink(a)), 50},
		{"a downlink", treebuild.Mbit(m.Downlink(a)), 25},
		{"c uplink", treebuild.Mbit(m.Uplink(c)), 2.5},
		{"b->a pair", treebuild.Mbit(m.Rate(b, a)), 20},
		{"a->b pair", treebuild.Mbit(m.Rate(a, b)), 15},
		{"a->c capped by c's downlink", treebuild.Mbit(m.Rate(a, c)), 2.5},
		{"b->c missing: sender's uplink, then c's downlink", treebuild.Mbit(m.Rate(b, c)), 2.5},
		{"c->b missing: c's uplink", treebuild.Mbit(m.Rate(c, b)), 2.5},
	}
	for _, ck := range checks {
		if math.Abs(ck.got-ck.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if _, err := loadMatrix(p, 100, 100, 0); err == nil {
		t.Error("scale 0 accepted")
	}
	if _, err := loadMatrix(p, -1, 100, 1); err == nil {
		t.Error("negative uplink accepted")
	}
	bad := filepath.Join(dir, "bad.tsv")
	if err := os.WriteFile(bad, []byte("receiver\\sender\ta\tb\na\t-\tx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadMatrix(bad, 100, 100, 1); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad cell: err = %v, want one naming line 2", err)
	}
}

func TestTableIBoundsMatchTheSwarm(t *testing.T) {
	// At scale 0.2 (20 Mbit/s access links) Table I from UW: the whole-swarm
	// bound for 64 MiB is the source's egress, 64 MiB / 20 Mbit/s.
	m, err := loadMatrix("matrices/table1.tsv", 100, 100, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	src, ok := m.Index("UW")
	if !ok {
		t.Fatal("no UW")
	}
	size := float64(64 << 20)
	a, err := analyse(m, src, size)
	if err != nil {
		t.Fatal(err)
	}
	if want := size / treebuild.FromMbit(20); math.Abs(a.Whole.Seconds-want) > 1e-6 {
		t.Errorf("whole bound %.3f s, want %.3f", a.Whole.Seconds, want)
	}
	if len(a.Receivers) != 8 {
		t.Fatalf("%d receivers, want 8", len(a.Receivers))
	}
	// The widest-path tree of the paper: UCLA and Berkeley straight from UW
	// (39 and 38.4 Mbit/s, scaled), everyone else below them at most at the
	// best west-coast egress (21.7, scaled).
	for h, want := range map[string]float64{"UCLA": 39 * 0.2, "Berkeley": 38.4 * 0.2, "GT": 21.7 * 0.2, "Duke": 21.7 * 0.2} {
		rb := a.Receivers[h]
		if math.Abs(rb.WidthMbit-want) > 1e-9 {
			t.Errorf("%s width %.3f, want %.3f", h, rb.WidthMbit, want)
		}
		if rb.Eq2Mbit > rb.WidthMbit+1e-9 {
			t.Errorf("%s: eq. 2 %.3f above the width %.3f", h, rb.Eq2Mbit, rb.WidthMbit)
		}
		if rb.BoundS > rb.TreeS {
			t.Errorf("%s: bound %.2f s above the single tree's %.2f s", h, rb.BoundS, rb.TreeS)
		}
	}
	if p := a.Receivers["UCLA"].Parent; p != "UW" {
		t.Errorf("UCLA's parent %q, want UW", p)
	}
}

func TestEq2SharesTheParentsUplink(t *testing.T) {
	// A star: the source feeds three receivers over a 30 Mbit/s uplink, so
	// each child's chain runs at 10 even though every pair runs at 100.
	m, err := treebuild.NewRateMatrix("s", "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		for j := range 4 {
			if i != j {
				m.SetRate(i, j, treebuild.FromMbit(100))
			}
		}
	}
	m, err = withCaps(m, 100, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.SetUplink(0, treebuild.FromMbit(30))
	a, err := analyse(m, 0, 1e6)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"a", "b", "c"} {
		rb := a.Receivers[h]
		if rb.Parent == "s" && math.Abs(rb.Eq2Mbit-10) > 1e-9 {
			t.Errorf("%s under s: eq. 2 %.3f, want 10", h, rb.Eq2Mbit)
		}
		if rb.Eq2Mbit > 30+1e-9 || rb.Eq2Mbit <= 0 {
			t.Errorf("%s: eq. 2 %.3f out of (0, 30]", h, rb.Eq2Mbit)
		}
	}
}

func TestGen(t *testing.T) {
	o := defaultGen(12, 3, 7)
	o.Slow = 5
	m1, err := gen(o)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := gen(o)
	if err != nil {
		t.Fatal(err)
	}
	var b1, b2 bytes.Buffer
	if _, err := m1.WriteTo(&b1); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.WriteTo(&b2); err != nil {
		t.Fatal(err)
	}
	if b1.String() != b2.String() {
		t.Error("the same seed gave two matrices")
	}
	o3 := o
	o3.Seed = 8
	m3, _ := gen(o3)
	var b3 bytes.Buffer
	_, _ = m3.WriteTo(&b3)
	if b3.String() == b1.String() {
		t.Error("two seeds gave one matrix")
	}
	// Round trip through the file format.
	back, err := treebuild.ParseMatrix(strings.NewReader(genHeader(o) + b1.String()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != 12 {
		t.Fatalf("%d hosts, want 12", back.Len())
	}
	slow := 0
	for h := range back.Len() {
		if up := back.Uplink(h); !math.IsInf(up, 1) {
			slow++
			if h == 0 {
				t.Error("the first host (the source) is slow")
			}
			mb := treebuild.Mbit(up)
			if mb < o.SlowMin-0.05 || mb > o.SlowMax+0.05 || back.Downlink(h) != up {
				t.Errorf("%s: access %.2f/%.2f Mbit/s, want both in [%v, %v]", back.Name(h), mb, treebuild.Mbit(back.Downlink(h)), o.SlowMin, o.SlowMax)
			}
		}
		for k := range back.Len() {
			if h == k {
				continue
			}
			r, ok := back.PairRate(h, k)
			if !ok {
				t.Fatalf("pair %d->%d missing", h, k)
			}
			mb := treebuild.Mbit(r)
			same := h%3 == k%3
			if same && (mb < o.InMin-0.05 || mb > o.InMax+0.05) || !same && (mb < o.OutMin-0.05 || mb > o.OutMax+0.05) {
				t.Errorf("%s->%s %.1f Mbit/s outside its range (same region %v)", back.Name(h), back.Name(k), mb, same)
			}
		}
	}
	if slow != 5 {
		t.Errorf("%d slow hosts, want 5", slow)
	}
	for _, bad := range []genOptions{defaultGen(1, 1, 0), defaultGen(12, 13, 0), {Hosts: 12, Regions: 3, Slow: 12, SlowMin: 3, SlowMax: 6, InMin: 1, InMax: 2, OutMin: 1, OutMax: 2}} {
		if _, err := gen(bad); err == nil {
			t.Errorf("gen(%+v) accepted", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"64MiB": 64 << 20, "8M": 8 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "1000": 1000, "1.5MiB": 3 << 19} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "big", "2000GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestParseSystems(t *testing.T) {
	got, err := parseSystems("romap2p, bittorrent")
	if err != nil || len(got) != 2 || got[1] != "bittorrent" {
		t.Errorf("parseSystems = %v, %v", got, err)
	}
	if all, _ := parseSystems("all"); len(all) != len(systemNames) {
		t.Errorf("all = %v", all)
	}
	for _, bad := range []string{"", "ftp", "http,http"} {
		if _, err := parseSystems(bad); err == nil {
			t.Errorf("parseSystems(%q) accepted", bad)
		}
	}
}

func TestSamplePairs(t *testing.T) {
	if n := len(samplePairs(4, 0, 1)); n != 12 {
		t.Errorf("all pairs of 4 hosts: %d, want 12", n)
	}
	ps := samplePairs(9, 10, 3)
	if len(ps) != 10 {
		t.Fatalf("%d pairs, want 10", len(ps))
	}
	seen := map[pair]bool{}
	for _, p := range ps {
		if p.from == p.to || seen[p] {
			t.Errorf("bad or repeated pair %v", p)
		}
		seen[p] = true
	}
	if !within(9.5, 10, 0.1) || within(8.9, 10, 0.1) || within(1, 0, 0.1) {
		t.Error("within misjudges the 10 % tolerance")
	}
}

func TestMarkdownAndChart(t *testing.T) {
	m, err := loadMatrix("matrices/uniform4.tsv", 100, 100, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	a, err := analyse(m, 0, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	k := 1.02
	res := &result{Receivers: a.Receivers, Systems: map[string]*systemResult{}}
	res.Case.Matrix, res.Case.Source, res.Case.SizeBytes, res.Case.Scale = "uniform4.tsv", "src", 8<<20, 0.2
	res.Case.Systems = []string{"romap2p", "romap2p-tree", "direct", "http"}
	res.Case.BoundS = a.Whole.Seconds
	for i, s := range res.Case.Systems {
		rr := &runResult{Run: 1, WholeS: 5, Receivers: map[string]*recvResult{}}
		for _, h := range []string{"r1", "r2", "r3"} {
			rr.Receivers[h] = &recvResult{Seconds: float64(4 + i), OK: true, ReceivedK: &k, Upstreams: []string{"src"}}
		}
		res.Systems[s] = &systemResult{Runs: []*runResult{rr}}
	}
	md := markdown(res)
	for _, want := range []string{"| romap2p | 5.0 |", "Paper mode", "| r1 | 1.20 | 1.40 | 0.33 |", "1.020, src"} {
		if !strings.Contains(md, want) {
			t.Errorf("result.md lacks %q:\n%s", want, md)
		}
	}
	svg := filepath.Join(t.TempDir(), "c.svg")
	if err := chart(res, svg); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("chart: %v, %d bytes", err, len(b))
	}
}

func TestParseRetransSegs(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin RetransSegs InErrs\nTcp: 1 200 4711 0\nUdp: InDatagrams\nUdp: 3\n"
	got, err := parseRetransSegs([]byte(snmp))
	if err != nil || got != 4711 {
		t.Fatalf("parseRetransSegs = %d, %v; want 4711", got, err)
	}
	if _, err := parseRetransSegs([]byte("Ip: a\nIp: 1\n")); err == nil {
		t.Fatal("no error without a Tcp line")
	}
}

func TestBytesAt(t *testing.T) {
	t0 := time.Unix(100, 0)
	series := []sample{
		{at: t0, bytes: []int64{10}},
		{at: t0.Add(250 * time.Millisecond), bytes: []int64{60}},
		{at: t0.Add(500 * time.Millisecond), bytes: []int64{90}},
	}
	if got := bytesAt(series, 0, 10, t0.Add(100*time.Millisecond)); got != 50 {
		t.Fatalf("bytesAt mid-run = %d, want 50", got)
	}
	if got := bytesAt(series, 0, 10, t0.Add(time.Second)); got != 80 {
		t.Fatalf("bytesAt past the end = %d, want 80", got)
	}
}

func TestPerSecond(t *testing.T) {
	t0 := time.Unix(100, 0)
	const mib = 1 << 20
	series := []sample{
		{at: t0, bytes: []int64{0}},
		{at: t0.Add(time.Second), bytes: []int64{mib}},
		{at: t0.Add(2 * time.Second), bytes: []int64{3 * mib}},
		{at: t0.Add(3 * time.Second), bytes: []int64{3*mib + mib/2}},
	}
	got := perSecond(series, 0, 0, t0, 2.5)
	want := []float64{1, 2, 0.5}
	if !slices.Equal(got, want) {
		t.Fatalf("perSecond = %v, want %v", got, want)
	}
}
