package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/romap2p/romap2p/internal/swarm"
)

// swarmTestMatrix is a three-host swarm where S -> A -> B beats S -> B.
const swarmTestMatrix = `receiver\sender	S	A	B
A	80	-	40
B	20	60	-
`

func runSwarmCommand(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cliEnv{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = execCommand(ctx, swarmCommand(), env, args)
	return out.String(), errOut.String(), err
}

// TestSwarmCommandJSON runs the command in-process on a tiny matrix and
// checks the JSON it prints and the report files it writes.
func TestSwarmCommandJSON(t *testing.T) {
	dir := t.TempDir()
	matrix := filepath.Join(dir, "m.tsv")
	if err := os.WriteFile(matrix, []byte(swarmTestMatrix), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report")
	stdout, stderr, err := runSwarmCommand(t, "--json", "--matrix", matrix, "--source", "S", "--size", "2MiB", "--report", report, "--tree", "widest", "--stripes", "1")
	if err != nil {
		t.Fatalf("swarm: %v\nstderr:\n%s", err, stderr)
	}
	var got struct {
		Source  string   `json:"source"`
		Size    int64    `json:"size"`
		Stripes int      `json:"stripes"`
		BoundS  *float64 `json:"bound_s"`
		TotalS  *float64 `json:"total_s"`
		Peers   []struct {
			Name          string    `json:"name"`
			Parent        string    `json:"parent"`
			WidthBps      *float64  `json:"width_bps"`
			GoodputBps    *float64  `json:"goodput_bps"`
			DirectBps     *float64  `json:"direct_bps"`
			CompletionS   *float64  `json:"completion_s"`
			OK            *bool     `json:"ok"`
			Upstreams     *int      `json:"upstreams"`
			UpstreamNames []string  `json:"upstream_names"`
			UploadedBytes *int64    `json:"uploaded_bytes"`
			StripeParents []string  `json:"stripe_parents"`
			StripeGoodput []float64 `json:"stripe_goodput_bps"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	if got.Source != "S" || got.Size != 2<<20 || got.Stripes != 1 || len(got.Peers) != 2 {
		t.Fatalf("header: %+v", got)
	}
	if got.BoundS == nil || *got.BoundS <= 0 || got.TotalS == nil || *got.TotalS <= 0 {
		t.Errorf("bound_s or total_s missing or not positive")
	}
	wantParent := map[string]string{"A": "S", "B": "A"}
	wantWidth := map[string]float64{"A": 80e6, "B": 60e6}
	for _, p := range got.Peers {
		if p.OK == nil || !*p.OK {
			t.Errorf("%s: not ok", p.Name)
		}
		if p.Parent != wantParent[p.Name] {
			t.Errorf("%s: parent %q, want %q (fixed widest tree)", p.Name, p.Parent, wantParent[p.Name])
		}
		if len(p.StripeParents) != 1 || p.StripeParents[0] != wantParent[p.Name] || len(p.StripeGoodput) != 1 {
			t.Errorf("%s: stripe_parents %q stripe_goodput_bps %v, want [%q] and one rate", p.Name, p.StripeParents, p.StripeGoodput, wantParent[p.Name])
		}
		if p.WidthBps == nil || *p.WidthBps != wantWidth[p.Name] {
			t.Errorf("%s: width_bps %v, want %v", p.Name, p.WidthBps, wantWidth[p.Name])
		}
		for field, v := range map[string]*float64{"goodput_bps": p.GoodputBps, "direct_bps": p.DirectBps, "completion_s": p.CompletionS} {
			if v == nil || *v <= 0 {
				t.Errorf("%s: %s missing or not positive", p.Name, field)
			}
		}
		if p.Upstreams == nil || p.UploadedBytes == nil || *p.Upstreams != len(p.UpstreamNames) {
			t.Errorf("%s: upstreams %v names %v uploaded %v", p.Name, p.Upstreams, p.UpstreamNames, p.UploadedBytes)
		}
	}
	// A relays to B, so it uploads at least the file once.
	for _, p := range got.Peers {
		if p.Name == "A" && p.UploadedBytes != nil && *p.UploadedBytes < 2<<20 {
			t.Errorf("relay A uploaded %d bytes", *p.UploadedBytes)
		}
	}
	if !strings.Contains(stderr, "done") {
		t.Errorf("no progress lines on stderr:\n%s", stderr)
	}

	dot, err := os.ReadFile(filepath.Join(report, "tree.dot"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(dot), "digraph") || !strings.Contains(string(dot), `"A" -> "B"`) {
		t.Errorf("tree.dot:\n%s", dot)
	}
	svg, err := os.ReadFile(filepath.Join(report, "chart.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("its bound")) {
		t.Errorf("chart.svg lacks an svg element or the legend (%d bytes)", len(svg))
	}
	tree, err := os.ReadFile(filepath.Join(report, "tree.svg"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name
	}
	if err := xml.Unmarshal(tree, &doc); err != nil || doc.XMLName.Local != "svg" {
		t.Errorf("tree.svg is not an SVG document: %v", err)
	}
	for _, want := range []string{">S<", ">A<", ">B<", "single tree"} {
		if !bytes.Contains(tree, []byte(want)) {
			t.Errorf("tree.svg lacks %q", want)
		}
	}
	stripes, err := os.ReadFile(filepath.Join(report, "tree-stripes.svg"))
	if err != nil {
		t.Fatal(err)
	}
	sdoc := parseSVG(t, stripes)
	panels, boxes := 0, map[string]int{}
	sdoc.walk(func(n *xmlNode) {
		switch n.attr("class") {
		case "stripe":
			panels++
		case "peer", "source":
			boxes[n.attr("data-peer")]++
		}
	})
	if panels != 1 || boxes["S"] != 1 || boxes["A"] != 1 || boxes["B"] != 1 {
		t.Errorf("tree-stripes.svg: %d panels, boxes %v; want one panel with S, A and B once", panels, boxes)
	}
	png, err := os.ReadFile(filepath.Join(report, "chart.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("chart.png is not a PNG")
	}
}

// TestSwarmCommandSummary runs a uniform swarm and checks the human table.
func TestSwarmCommandSummary(t *testing.T) {
	stdout, stderr, err := runSwarmCommand(t, "--peers", "2", "--rate", "80", "--size", "1MiB", "--quiet")
	if err != nil {
		t.Fatalf("swarm: %v\nstderr:\n%s", err, stderr)
	}
	for _, want := range []string{"PEER", "IDEAL", "GOODPUT", "DIRECT", "peer1", "peer2", "total_s", "bound_s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, " NO ") {
		t.Errorf("a receiver failed:\n%s", stdout)
	}
	if stderr != "" && strings.Contains(stderr, "done:") {
		t.Errorf("--quiet still printed progress:\n%s", stderr)
	}
}

func TestSwarmCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--size", "lots"},
		{"--size", "0"},
		{"--peers", "3", "--matrix", "x"},
		{"--rate", "5"},
		{"--source", "Nowhere"},
		{"--tree", "bushy"},
		{"--stripes", "0"},
		{"extra"},
	} {
		_, _, err := runSwarmCommand(t, args...)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}

func TestSwarmLiveLines(t *testing.T) {
	s := swarm.Snapshot{Elapsed: 1500 * time.Millisecond, Peers: []swarm.PeerState{
		{Name: "A", Parent: "S", Upstreams: 1, GoodputBps: 40e6, Progress: 0.5, Joined: true},
		{Name: "B", Joined: true, Done: true, OK: true, Progress: 1},
		{Name: "C"},
	}}
	lines := swarmLiveLines(s)
	if len(lines) != 5 || !strings.Contains(lines[0], "1/3") {
		t.Fatalf("lines:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[2], "40.0") || !strings.Contains(lines[2], "50.0%") || !strings.Contains(lines[2], "[##########----------]") {
		t.Errorf("row A: %q", lines[2])
	}
	if !strings.Contains(lines[3], "done") || !strings.Contains(lines[4], "waiting") {
		t.Errorf("rows B, C: %q %q", lines[3], lines[4])
	}
	plain := swarmPlainLine(s)
	if !strings.Contains(plain, "A 50.0%@40.0Mbit/s<-S") || !strings.Contains(plain, "1/3 done") {
		t.Errorf("plain line %q", plain)
	}
}
