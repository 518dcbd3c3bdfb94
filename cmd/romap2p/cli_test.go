package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/spf13/pflag"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/romap2p/romap2p/node"
	"github.com/romap2p/romap2p/protocol"
)

const testPeer = "12D3KooWJhhDxbkrbnXw4kL5BYwawot84mUheKsSNYKwbhx32upy"

func testCID(t testing.TB) cid.Cid {
	t.Helper()
	return protocol.ManifestCID([]byte("manifest bytes for a test"))
}

func testPeerID(t testing.TB) peer.ID {
	t.Helper()
	p, err := peer.Decode(testPeer)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeSource is a progressSource with fixed snapshots.
type fakeSource map[cid.Cid]node.Progress

func (f fakeSource) Sessions() []cid.Cid {
	out := make([]cid.Cid, 0, len(f))
	for c := range f {
		out = append(out, c)
	}
	return out
}

func (f fakeSource) Progress(c cid.Cid) (node.Progress, bool) {
	p, ok := f[c]
	return p, ok
}

func fetching(t testing.TB) node.Progress {
	return node.Progress{
		CID: testCID(t), Name: "big.iso", Size: 100 << 20, Role: "fetching",
		Blocks: 4, BlocksDone: 1, BytesDone: 25 << 20,
		SymbolsIn: 12000, SymbolsNew: 11000, Needed: 25600,
		Rate: 10 << 20, Width: 10 << 20, Uploaded: 1 << 20,
		Upstreams: []node.Link{
			{Peer: testPeerID(t), Stripe: 0, Symbols: 12000, Fresh: 11000},
			{Peer: testPeerID(t), Stripe: 1, Probe: true},
		},
		Children: []node.Link{{Peer: testPeerID(t)}},
	}
}

func TestProgressLine(t *testing.T) {
	p := fetching(t)
	line := progressLine(p, 3*time.Second, 0)
	// 11000 of 25600 symbols: 43 % of 100 MiB, 57 MiB left at 10 MiB/s.
	for _, want := range []string{" 43.0%", "43 MiB / 100 MiB", "10 MiB/s", "ETA 6s", "from 1 peer …x32upy×1", "to 1 peer"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if strings.Count(line, "x32upy") != 1 {
		t.Errorf("probe listed as a parent: %q", line)
	}
	if got := progressLine(p, 0, 20); len([]rune(got)) != 20 || !strings.HasSuffix(got, "…") {
		t.Errorf("truncated line %q", got)
	}

	p.Rate, p.Upstreams, p.Children = 0, nil, nil
	if got := progressLine(p, 0, 0); !strings.Contains(got, "ETA -") || !strings.Contains(got, "finding peers") {
		t.Errorf("stalled line %q", got)
	}

	p.Role, p.Done, p.BytesDone = "complete", true, p.Size
	if got := progressLine(p, 90*time.Second, 0); !strings.HasPrefix(got, "100.0%") || !strings.Contains(got, "done in 1m30s") || strings.Contains(got, "/s") {
		t.Errorf("done line %q", got)
	}
}

func TestFractionDone(t *testing.T) {
	p := fetching(t)
	p.SymbolsNew = 3 * p.Needed // duplicates of a resume never pass 99.9 %
	if f := fractionDone(p); f >= 1 || f < 0.99 {
		t.Errorf("fraction %v before verification", f)
	}
	p.SymbolsNew, p.Needed = 0, 0
	if f := fractionDone(p); f != 0.25 {
		t.Errorf("fraction from blocks %v, want 0.25", f)
	}
	p.Role, p.Done = "source", true
	if f := fractionDone(p); f != 1 {
		t.Errorf("source fraction %v", f)
	}
}

func TestHumanFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{humanBytes(512), "512 B"},
		{humanBytes(1536), "1.5 KiB"},
		{humanBytes(3 << 30), "3.0 GiB"},
		{humanBytes(100 << 20), "100 MiB"},
		{humanRate(0), "-"},
		{humanRate(math.Inf(1)), "-"},
		{humanRate(2 << 20), "2.0 MiB/s"},
		{humanDuration(59 * time.Second), "59s"},
		{humanDuration(61 * time.Second), "1m01s"},
		{humanDuration(2*time.Hour + 5*time.Minute), "2h05m"},
		{humanDuration(1000 * time.Hour), ">99h"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		err       error
		signalled bool
		want      int
	}{
		{nil, false, exitOK},
		{nil, true, exitOK}, // a seed stopped by Ctrl-C did its job
		{pflag.ErrHelp, false, exitOK},
		{usageError{"bad"}, false, exitUsage},
		{fmt.Errorf("wrapped: %w", usageError{"bad"}), false, exitUsage},
		{interruptedError{"stopped"}, false, exitInterrupted},
		{errors.New("boom"), true, exitInterrupted},
		{errors.New("boom"), false, exitFailure},
		{fmt.Errorf("get: %w", node.ErrNoPeers), false, exitFailure},
	}
	for _, c := range cases {
		if got := exitCode(c.err, c.signalled); got != c.want {
			t.Errorf("exitCode(%v, %v) = %d, want %d", c.err, c.signalled, got, c.want)
		}
	}
	if got := errorLine(errors.New("line one\nline two")); got != "line one line two" {
		t.Errorf("errorLine gave %q", got)
	}
	if got := errorLine(fmt.Errorf("x: %w", context.Canceled)); !strings.HasPrefix(got, "interrupted: ") {
		t.Errorf("errorLine gave %q", got)
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	env := &cliEnv{stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), getenv: func(string) string { return "" }}
	c := &command{name: "x"}
	fs := newFlagSet(c, env)
	o := fs.StringP("output", "o", "", "")
	j := fs.Bool("json", false, "")
	pos, err := parseArgs(fs, []string{"CID", "-o", "out", "--json", "--", "-literal"})
	if err != nil {
		t.Fatal(err)
	}
	if *o != "out" || !*j || strings.Join(pos, " ") != "CID -literal" {
		t.Errorf("o=%q json=%v pos=%q", *o, *j, pos)
	}
	_, err = parseArgs(newFlagSet(c, env), []string{"--nope"})
	if exitCode(err, false) != exitUsage {
		t.Errorf("unknown flag: %v", err)
	}
	_, err = parseArgs(newFlagSet(c, env), []string{"--log-level", "loud"})
	if exitCode(err, false) != exitUsage {
		t.Errorf("bad log level: %v", err)
	}
	fs = newFlagSet(c, env)
	if _, err := parseArgs(fs, []string{"--help"}); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("help: %v", err)
	}
	if out := env.stdout.(*bytes.Buffer).String(); !strings.Contains(out, "-log-level") {
		t.Errorf("help lacks flags: %q", out)
	}
}

func TestNodeFlagsValidation(t *testing.T) {
	env := &cliEnv{getenv: func(string) string { return "" }}
	for _, args := range [][]string{
		{"--stripes", "0"},
		{"--max-children", "0"},
		{"--security", "plaintext"},
		{"--bootstrap", "/ip4/127.0.0.1/tcp/1"}, // no /p2p/
		{"--upload-limit", "fast"},
	} {
		fs := newFlagSet(&command{name: "x"}, env)
		var nf nodeFlags
		nf.register(fs, env, true)
		if _, err := parseArgs(fs, append(args, "--repo", t.TempDir())); err != nil {
			t.Fatal(err)
		}
		if _, _, err := nf.options(busyRefuse, nil); exitCode(err, false) != exitUsage {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
	fs := newFlagSet(&command{name: "x"}, env)
	var nf nodeFlags
	nf.register(fs, env, true)
	args := []string{"--repo", t.TempDir(), "--stripes", "4", "--max-children", "3", "--upload-limit", "10Mbit/s",
		"--bootstrap", "/ip4/127.0.0.1/tcp/4001/p2p/" + testPeer}
	if _, err := parseArgs(fs, args); err != nil {
		t.Fatal(err)
	}
	opts, repo, err := nf.options(busyRefuse, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	if len(opts) < 5 {
		t.Errorf("only %d options", len(opts))
	}
}

func TestParseSizeAndRate(t *testing.T) {
	sizes := map[string]int64{"4096": 4096, "64MiB": 64 << 20, "1.5GB": 1500000000, "8M": 8 << 20, "10 KB": 10000, "7B": 7}
	for s, want := range sizes {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1", "lots", "1e400", "NaN"} {
		if _, err := parseSize(s); err == nil {
			t.Errorf("parseSize(%q) accepted", s)
		}
	}
	rates := map[string]float64{"2MB/s": 2e6, "10Mbit/s": 1.25e6, "1Gbit": 1.25e8, "512KiB/s": 512 << 10, "1000": 1000}
	for s, want := range rates {
		if got, err := parseRate(s); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"0", "0Mbit/s", "fast", "-3MB/s"} {
		if _, err := parseRate(s); err == nil {
			t.Errorf("parseRate(%q) accepted", s)
		}
	}
}

func TestParseCID(t *testing.T) {
	c := testCID(t)
	if got, err := parseCID(c.String()); err != nil || got != c {
		t.Errorf("parseCID: %v %v", got, err)
	}
	for _, s := range []string{"hello", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"} {
		if _, err := parseCID(s); exitCode(err, false) != exitUsage {
			t.Errorf("parseCID(%q): %v, want usage error", s, err)
		}
	}
}

func TestUsableAddrs(t *testing.T) {
	id := testPeerID(t)
	var addrs []ma.Multiaddr
	for _, s := range []string{"/ip4/0.0.0.0/tcp/1", "/ip4/127.0.0.1/tcp/2", "/ip4/10.0.0.5/tcp/3", "/ip6/fe80::1/tcp/4", "/ip4/8.8.8.8/tcp/5"} {
		addrs = append(addrs, ma.StringCast(s))
	}
	got := usableAddrs(peer.AddrInfo{ID: id, Addrs: addrs})
	want := []string{"/ip4/8.8.8.8/tcp/5", "/ip4/10.0.0.5/tcp/3", "/ip4/127.0.0.1/tcp/2"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i]+"/p2p/"+testPeer {
			t.Errorf("addr %d = %q, want %q", i, got[i], want[i])
		}
	}
	if h := getHint("/opt/my tools/rp", testCID(t), got); !strings.HasPrefix(h, "/opt/my tools/rp get ") || !strings.Contains(h, "--bootstrap /ip4/8.8.8.8/tcp/5/p2p/") {
		t.Errorf("hint %q", h)
	}
	if q := shellQuote("/opt/my tools/rp"); q != "'/opt/my tools/rp'" {
		t.Errorf("quoted %q", q)
	}
}

func TestOutputPathAndRename(t *testing.T) {
	dir := t.TempDir()
	c := testCID(t)
	if p, named := outputPath("", c); p != c.String() || named {
		t.Errorf("default output %q %v", p, named)
	}
	if p, named := outputPath(dir, c); p != filepath.Join(dir, c.String()) || named {
		t.Errorf("directory output %q %v", p, named)
	}
	if p, named := outputPath(filepath.Join(dir, "f"), c); p != filepath.Join(dir, "f") || !named {
		t.Errorf("named output %q %v", p, named)
	}
	src := filepath.Join(dir, c.String())
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	for _, bad := range []string{"", "../evil", "a/b", ".."} {
		if got := rename(src, bad, &warn); got != src {
			t.Errorf("rename to %q gave %q", bad, got)
		}
	}
	if got := rename(src, "movie.mkv", &warn); got != filepath.Join(dir, "movie.mkv") {
		t.Errorf("rename gave %q", got)
	}
	if err := os.WriteFile(src, []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := rename(src, "movie.mkv", &warn); got != src || !strings.Contains(warn.String(), "exists") {
		t.Errorf("rename over an existing file gave %q (%q)", got, warn.String())
	}
}

func TestAPIHandlerAndStatus(t *testing.T) {
	p := fetching(t)
	src := fakeSource{p.CID: p}
	srv := httptest.NewServer(apiHandler(src, func() statusJSON { return statusJSON{PeerID: testPeer} }))
	defer srv.Close()
	st, raw, err := fetchStatus(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if st.PeerID != testPeer || len(st.Sessions) != 1 {
		t.Fatalf("status %s", raw)
	}
	s := st.Sessions[0]
	if s.CID != p.CID.String() || s.SymbolsNeeded != 25600 || s.BlocksDone != 1 || len(s.Upstreams) != 2 || s.WidthBps == nil {
		t.Errorf("session %+v", s)
	}
	for _, key := range []string{`"symbols_new":11000`, `"goodput_bps":`, `"uploaded_bytes":1048576`, `"blocks_done":1`} {
		if !bytes.Contains(raw, []byte(key)) {
			t.Errorf("JSON lacks %s: %s", key, raw)
		}
	}
	var out bytes.Buffer
	if err := printStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "big.iso") || !strings.Contains(out.String(), "43.0%") {
		t.Errorf("table:\n%s", out.String())
	}

	// A source has an unbounded width: null in JSON, which must still encode.
	p.Role, p.Width, p.Done = "source", math.Inf(1), true
	src[p.CID] = p
	if _, raw, err = fetchStatus(context.Background(), srv.URL); err != nil || !bytes.Contains(raw, []byte(`"width_bps":null`)) {
		t.Errorf("source status %s: %v", raw, err)
	}
	resp, err := http.Post(srv.URL+statusPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST gave %s", resp.Status)
	}
}

func TestAPIAddress(t *testing.T) {
	repo := t.TempDir()
	none := func(string) string { return "" }
	if got := apiAddress("", repo, none); got != defaultAPI {
		t.Errorf("default %q", got)
	}
	if err := os.WriteFile(filepath.Join(repo, apiFile), []byte("127.0.0.1:7777\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := apiAddress("", repo, none); got != "127.0.0.1:7777" {
		t.Errorf("from repo %q", got)
	}
	env := func(k string) string {
		if k == "ROMAP2P_API" {
			return "127.0.0.1:8888"
		}
		return ""
	}
	if got := apiAddress("", repo, env); got != "127.0.0.1:8888" {
		t.Errorf("from env %q", got)
	}
	if got := apiAddress("1.2.3.4:5", repo, env); got != "1.2.3.4:5" {
		t.Errorf("from flag %q", got)
	}
}

func TestMetricsCollector(t *testing.T) {
	p := fetching(t)
	reg, err := metricsRegistry(fakeSource{p.CID: p})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			for _, l := range m.GetLabel() {
				if l.GetName() == "cid" && l.GetValue() == p.CID.String() {
					got[mf.GetName()] = v
				}
			}
		}
	}
	want := map[string]float64{
		"romap2p_session_goodput_bytes_per_second": 10 << 20,
		"romap2p_session_symbols_received_total":   12000,
		"romap2p_session_symbols_new_total":        11000,
		"romap2p_session_uploaded_bytes_total":     1 << 20,
		"romap2p_session_child_peers":              1,
		"romap2p_session_parent_peers":             1,
		"romap2p_session_subscriptions":            2,
		"romap2p_session_verified_blocks":          1,
		"romap2p_session_complete":                 0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestLinkTrackerKeepsClosedLinks(t *testing.T) {
	p := fetching(t)
	tr := newLinkTracker()
	tr.sample(p)
	p.Upstreams = nil // the session closed its upstreams on completion
	tr.sample(p)
	links := tr.links()
	if len(links) != 2 || links[0].Fresh != 11000 {
		t.Fatalf("links %+v", links)
	}
	p.Role, p.Done = "complete", true
	res := newGetResult(p, "out", 2*time.Second, links)
	if !res.OK || len(res.Parents) != 1 || res.Parents[0] != testPeer || res.GoodputBps != float64(p.Size)/2 {
		t.Errorf("result %+v", res)
	}
	b, _ := json.Marshal(res)
	for _, key := range []string{"cid", "path", "size", "ok", "seconds", "goodput_bps", "symbols_in", "symbols_needed", "upstreams", "parents"} {
		if !bytes.Contains(b, []byte(`"`+key+`":`)) {
			t.Errorf("result JSON lacks %s", key)
		}
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run([]string{"nope"}, env); code != exitUsage {
		t.Errorf("unknown command: %d", code)
	}
	if code := run([]string{"get"}, env); code != exitUsage || !strings.Contains(errb.String(), "exactly one CID") {
		t.Errorf("get without CID: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"get", "not-a-cid"}, env); code != exitUsage || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("bad CID: %d %q", code, errb.String())
	}
	if code := run([]string{"bench", "disk"}, env); code != exitUsage {
		t.Errorf("bench disk: %d", code)
	}
	for name := range commands() {
		out.Reset()
		if code := run([]string{name, "--help"}, env); code != exitOK || !strings.Contains(out.String(), "Examples:") {
			t.Errorf("%s --help: %d %q", name, code, out.String())
		}
	}
}

func TestBenchCodecJSON(t *testing.T) {
	var out, errb bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run([]string{"bench", "codec", "--size", "256KiB", "--symbol", "1024", "--loss", "0.2", "--json"}, env); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	if res["size"].(float64) != 256<<10 || res["encode_MBps"].(float64) <= 0 || res["decode_MBps"].(float64) <= 0 {
		t.Errorf("result %v", res)
	}
	if _, ok := res["overhead_symbols"]; !ok {
		t.Errorf("no overhead_symbols in %v", res)
	}
}

func TestSeedFlagsUsage(t *testing.T) {
	const c = "bafyreif7gkzcqrs6pepskbllgnlivqrkzncgoqddnv54xtntvos565nynu"
	for _, args := range [][]string{
		{"get", c, "--seed-ratio", "-1"},
		{"get", c, "--seed-time", "-5s"},
		{"get", c, "--keep-serving", "--no-seed"},
	} {
		var out, errb bytes.Buffer
		env := &cliEnv{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := run(append(args, "--repo", t.TempDir()), env); code != exitUsage || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want a one-line usage error", args, code, errb.String())
		}
	}
}
