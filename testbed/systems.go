package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// systemNames are the systems `run` knows, in their default order.
var systemNames = []string{"romap2p", "romap2p-default", "romap2p-tree", "bittorrent", "http", "direct"}

// bed is what every system run shares: the topology, the file, the tools.
type bed struct {
	topo    *topology
	src     int
	recv    []int // receiver host indexes
	file    string
	sha     string
	size    int64
	stagger time.Duration
	// timeout is the time limit of one run of a system.
	timeout func(system string) time.Duration
	tools   *tools
	// peerHost maps romap2p peer IDs to host names.
	peerHost map[string]string
	// sab is the saboteur's host index (-1: none).
	sab int
}

// outcome is what one system run yields, before the link counters.
type outcome struct {
	source *proc
	recv   map[int]*proc
	// extra are helper processes (a tracker) whose CPU counts to the run.
	extra []*proc
	// out is each receiver's output file.
	out map[int]string
	err error
	// sab is the receiver that runs the saboteur (-1: none), in mode
	// sabMode, writing its record to sabRecord. Its own download is not
	// waited for.
	sab       int
	sabMode   string
	sabRecord string
}

func (b *bed) name(i int) string { return b.topo.m.Name(i) }

func (b *bed) addr(i int) string { return b.topo.addrs[i].String() }

// peerOf returns host i's romap2p peer ID.
func (b *bed) peerOf(i int) string {
	for id, h := range b.peerHost {
		if h == b.name(i) {
			return id
		}
	}
	return ""
}

// launchReceivers starts one process per receiver, all at once or
// stagger apart, and waits for all of them to finish or the deadline.
func (b *bed) launchReceivers(ctx context.Context, dir string, o *outcome, mk func(i int) (*exec.Cmd, lineFunc, error)) error {
	for k, i := range b.recv {
		if k > 0 && b.stagger > 0 {
			select {
			case <-time.After(b.stagger):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		cmd, onLine, err := mk(i)
		if err != nil {
			return err
		}
		p, err := startProc(b.name(i), cmd, filepath.Join(dir, b.name(i)+".log"), onLine)
		if err != nil {
			return err
		}
		o.recv[i] = p
	}
	ps := make([]*proc, 0, len(o.recv))
	for _, i := range b.recv {
		if i != o.sab {
			ps = append(ps, o.recv[i])
		}
	}
	waitAll(ctx, ps)
	return nil
}

// runSystem runs one system once in dir. The caller stops every process of
// the outcome after reading it.
func (b *bed) runSystem(ctx context.Context, system, dir string) *outcome {
	o := &outcome{recv: map[int]*proc{}, out: map[int]string{}, sab: -1}
	limit := b.timeout(system)
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	base, mode := splitSabotage(system)
	if mode != "" {
		o.sab, o.sabMode, o.sabRecord = b.sab, mode, filepath.Join(dir, "saboteur.record")
	}
	switch base {
	case "romap2p", "romap2p-default", "romap2p-tree":
		o.err = b.runRomap2p(ctx, base, dir, o)
	case "bittorrent":
		o.err = b.runBitTorrent(ctx, dir, o)
	case "http", "direct":
		o.err = b.runHTTP(ctx, system == "direct", dir, o)
	default:
		o.err = fmt.Errorf("unknown system %q", system)
	}
	if o.err == nil && ctx.Err() != nil {
		o.err = fmt.Errorf("%s: not every receiver finished within %s", system, limit)
	}
	return o
}

// getJSON is the part of `romap2p get --json` the testbed reads.
type getJSON struct {
	OK            bool        `json:"ok"`
	Seconds       float64     `json:"seconds"`
	SymbolsIn     uint64      `json:"symbols_in"`
	SymbolsNeeded uint64      `json:"symbols_needed"`
	Parents       []string    `json:"parents"`
	Blamed        []blameSeen `json:"blamed"`
	Completed     string      `json:"completed"`
}

func (b *bed) runRomap2p(ctx context.Context, system, dir string, o *outcome) error {
	bin := b.tools.romap2p
	stripes := []string{}
	if system == "romap2p-tree" {
		stripes = []string{"--stripes", "1"}
	}
	srcAddr := fmt.Sprintf("/ip4/%s/tcp/4001", b.addr(b.src))
	args := append([]string{"serve", b.file, "--no-dht", "--api", "off", "--json",
		"--repo", b.tools.repo(b.name(b.src)), "--listen", srcAddr}, stripes...)
	var served struct {
		CID   string   `json:"cid"`
		Addrs []string `json:"addrs"`
	}
	srv, err := startProc(b.name(b.src), b.topo.command(ctx, b.src, bin, args...), filepath.Join(dir, b.name(b.src)+".log"),
		func(stdout bool, line string) (bool, map[string]any) {
			if !stdout || json.Unmarshal([]byte(line), &served) != nil || served.CID == "" {
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		return err
	}
	o.source = srv
	if err := waitDone(ctx, srv); err != nil {
		return fmt.Errorf("romap2p serve: %w", err)
	}
	boot := ""
	for _, a := range served.Addrs {
		if strings.HasPrefix(a, srcAddr+"/p2p/") {
			boot = a
		}
	}
	if boot == "" {
		return fmt.Errorf("romap2p serve printed no address on %s: %v", srcAddr, served.Addrs)
	}
	return b.launchReceivers(ctx, dir, o, func(i int) (*exec.Cmd, lineFunc, error) {
		out := filepath.Join(dir, "out-"+b.name(i))
		o.out[i] = out
		args := []string{"get", served.CID, "--bootstrap", boot, "--json", "--repo", b.tools.repo(b.name(i)),
			"-o", out, "--listen", fmt.Sprintf("/ip4/%s/tcp/4001", b.addr(i))}
		if system != "romap2p-default" {
			args = append(args, "--keep-serving", "--no-dht", "--api", "off")
		}
		args = append(args, stripes...)
		cmd := b.topo.command(ctx, i, bin, args...)
		if i == o.sab {
			cmd = b.topo.command(ctx, i, b.tools.saboteur, args...)
			cmd.Env = append(os.Environ(), "ROMAP2P_SABOTAGE="+o.sabMode, "ROMAP2P_SABOTAGE_RECORD="+o.sabRecord)
		}
		return cmd, func(stdout bool, line string) (bool, map[string]any) {
			var g getJSON
			if !stdout || json.Unmarshal([]byte(line), &g) != nil || g.SymbolsNeeded == 0 {
				return false, nil
			}
			ups := []string{}
			for _, p := range g.Parents {
				if h, ok := b.peerHost[p]; ok {
					ups = append(ups, h)
				} else {
					ups = append(ups, p)
				}
			}
			return true, map[string]any{
				"received_k": float64(g.SymbolsIn) / float64(g.SymbolsNeeded),
				"upstreams":  ups,
				"own_s":      g.Seconds,
				"blamed":     g.Blamed,
				"completed":  g.Completed,
			}
		}, nil
	})
}

// runHTTP serves the file over plain HTTP from the source; every receiver
// fetches it at once (N x unicast) or one after the other (direct).
func (b *bed) runHTTP(ctx context.Context, sequential bool, dir string, o *outcome) error {
	self := b.tools.self
	listen := fmt.Sprintf("%s:8080", b.addr(b.src))
	srv, err := startProc(b.name(b.src), b.topo.command(ctx, b.src, self, "_http", listen, b.file),
		filepath.Join(dir, b.name(b.src)+".log"),
		func(stdout bool, line string) (bool, map[string]any) { return stdout && line == "listening", nil })
	if err != nil {
		return err
	}
	o.source = srv
	if err := waitDone(ctx, srv); err != nil {
		return fmt.Errorf("http server: %w", err)
	}
	url := "http://" + listen + "/file"
	mk := func(i int) (*exec.Cmd, lineFunc, error) {
		out := filepath.Join(dir, "out-"+b.name(i))
		o.out[i] = out
		return b.topo.command(ctx, i, self, "_fetch", url, out), func(stdout bool, line string) (bool, map[string]any) {
			return stdout && strings.HasPrefix(line, "done "), nil
		}, nil
	}
	if !sequential {
		return b.launchReceivers(ctx, dir, o, mk)
	}
	for _, i := range b.recv {
		cmd, onLine, _ := mk(i)
		p, err := startProc(b.name(i), cmd, filepath.Join(dir, b.name(i)+".log"), onLine)
		if err != nil {
			return err
		}
		o.recv[i] = p
		waitAll(ctx, []*proc{p})
		p.stop()
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// runBitTorrent runs a tracker and a seeder on the source and one client
// per receiver that seeds on after its download.
func (b *bed) runBitTorrent(ctx context.Context, dir string, o *outcome) error {
	if err := b.tools.ensureBitTorrent(ctx); err != nil {
		return err
	}
	announce := fmt.Sprintf("http://%s:8000/announce", b.addr(b.src))
	tr, err := startProc("tracker", b.topo.command(ctx, b.src, "node", b.tools.tracker, b.addr(b.src), "8000"),
		filepath.Join(dir, "tracker.log"),
		func(stdout bool, line string) (bool, map[string]any) { return stdout && line == "listening", nil })
	if err != nil {
		return err
	}
	o.extra = append(o.extra, tr)
	if err := waitDone(ctx, tr); err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	// The seeder's directory holds the file under the torrent's name.
	seedDir := filepath.Join(dir, "seed")
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		return err
	}
	name := filepath.Base(b.file)
	if err := os.Link(b.file, filepath.Join(seedDir, name)); err != nil {
		return fmt.Errorf("bittorrent seed: %w", err)
	}
	tfile := filepath.Join(dir, "file.torrent")
	mi, err := exec.CommandContext(ctx, b.tools.torrent, "create", "--empty-announce-list", "--announce-list", announce, filepath.Join(seedDir, name)).Output()
	if err != nil {
		return fmt.Errorf("torrent create: %w", err)
	}
	if err := os.WriteFile(tfile, mi, 0o644); err != nil {
		return err
	}
	client := func(i int, cwd string) *exec.Cmd {
		args := []string{"download", "--seed", "--no-dht", "--no-port-forward", "--no-utp-peers",
			"--no-webtorrent", "--no-ipv6", "--no-progress", "--addr", b.addr(i) + ":6881"}
		if i == b.src {
			args = append(args, "--verify")
		}
		cmd := b.topo.command(ctx, i, b.tools.torrent, append(args, tfile)...)
		cmd.Dir = cwd
		return cmd
	}
	complete := func(stdout bool, line string) (bool, map[string]any) {
		return strings.Contains(line, "downloaded ALL the torrents"), nil
	}
	seeder, err := startProc(b.name(b.src), client(b.src, seedDir), filepath.Join(dir, b.name(b.src)+".log"), complete)
	if err != nil {
		return err
	}
	o.source = seeder
	if err := waitDone(ctx, seeder); err != nil {
		return fmt.Errorf("bittorrent seeder: %w", err)
	}
	return b.launchReceivers(ctx, dir, o, func(i int) (*exec.Cmd, lineFunc, error) {
		cwd := filepath.Join(dir, "bt-"+b.name(i))
		if err := os.MkdirAll(cwd, 0o755); err != nil {
			return nil, nil, err
		}
		o.out[i] = filepath.Join(cwd, name)
		return client(i, cwd), complete, nil
	})
}

// stopAll stops every process of an outcome (reading CPU first).
func (o *outcome) stopAll() {
	var ps []*proc
	for _, p := range o.recv {
		ps = append(ps, p)
	}
	ps = append(ps, o.extra...)
	if o.source != nil {
		ps = append(ps, o.source)
	}
	// Read every CPU counter before any process goes away, then stop.
	for _, p := range ps {
		select {
		case <-p.exited:
		default:
			if c, err := cpuSeconds(p.cmd.Process.Pid); err == nil {
				p.mu.Lock()
				p.cpuEnd = c
				p.mu.Unlock()
			}
		}
	}
	for _, p := range ps {
		_ = p.cmd.Process.Signal(os.Interrupt)
	}
	for _, p := range ps {
		p.stop()
	}
}

var errNotOK = errors.New("output differs from the source")
