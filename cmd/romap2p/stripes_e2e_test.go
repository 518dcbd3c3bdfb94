package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStripedProcesses runs one `serve` and four `get` processes with four
// stripes on loopback: every get completes with a verified file and takes
// symbols from more than one upstream (one per stripe at least).
func TestStripedProcesses(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	data := writeRandom(t, filepath.Join(dir, "in.bin"), 16<<20, 2)
	loop := "/ip4/127.0.0.1/tcp/0"
	srv := start(t, bin, "serve", "--stripes", "4", "--no-dht", "--listen", loop, "--api", "off",
		"--repo", filepath.Join(dir, "serve-repo"), filepath.Join(dir, "in.bin"))
	m := srv.expectLine(t, getHintRE, 30*time.Second)
	c, boot := m[1], m[2]

	var gets []*proc
	for i := range 4 {
		name := string(rune('a' + i))
		gets = append(gets, start(t, bin, "get", c, "--stripes", "4", "--bootstrap", boot, "--no-dht", "--json",
			"--listen", loop, "--repo", filepath.Join(dir, "repo-"+name), "-o", filepath.Join(dir, "out", name)))
	}
	for i, g := range gets {
		if code := g.wait(t, 90*time.Second); code != 0 {
			t.Fatalf("get %d exit %d: %s", i, code, g.stderr)
		}
		got, err := os.ReadFile(filepath.Join(dir, "out", string(rune('a'+i))))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %d: output differs from the input (%v)", i, err)
		}
		var res getResult
		if err := json.Unmarshal([]byte(g.stdout.String()), &res); err != nil {
			t.Fatalf("get %d: %v\n%s", i, err, g.stdout)
		}
		stripes := map[int]bool{}
		for _, u := range res.Upstreams {
			stripes[u.Stripe] = true
		}
		t.Logf("get %d: %d upstreams over %d stripes, %.3f x K received", i, len(res.Upstreams), len(stripes),
			float64(res.SymbolsIn)/float64(res.SymbolsNeeded))
		if !res.OK || len(res.Upstreams) < 2 || len(stripes) < 2 {
			t.Errorf("get %d: want a verified file from several upstreams, got %+v", i, res)
		}
		// Credits keep the upstreams from sending much more than needed
		// (measured 1.000-1.020 x K on loopback; the bound leaves room
		// for a busy machine).
		// The testbed holds received/K to its target (1.03); here, with
		// four processes on a loaded machine, a bound that catches a
		// broken credit loop (it used to reach 1.16) without timing noise.
		if r := float64(res.SymbolsIn) / float64(res.SymbolsNeeded); r > 1.08 {
			t.Errorf("get %d: received %.3f x K, want at most 1.08", i, r)
		}
	}
}
