package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Versions of the outside tools the bittorrent system uses.
const (
	torrentModule  = "github.com/anacrolix/torrent/cmd/torrent"
	torrentVersion = "v1.61.0"
	trackerPackage = "bittorrent-tracker"
	trackerVersion = "11.2.3"
)

// trackerScript runs an HTTP-only tracker (no UDP, no WebSocket) and says
// "listening" once it accepts announces.
const trackerScript = `import Server from 'bittorrent-tracker/server'
const [host, port] = [process.argv[2], Number(process.argv[3])]
const server = new Server({ udp: false, http: true, ws: false, stats: false, interval: 2000 })
server.on('error', (err) => { console.error(err.message); process.exit(1) })
server.on('listening', () => { console.log('listening') })
server.listen(port, host)
`

// tools are the programs a run uses.
type tools struct {
	romap2p string // the romap2p binary
	// saboteur is the romap2p binary built with the romap2p_saboteur tag
	// (only when a run has a saboteur).
	saboteur string
	self     string // this harness, for its helper subcommands
	repos    string // directory of the per-host romap2p repos
	cache    string // where outside tools are built and kept

	btOnce  sync.Once
	btErr   error
	torrent string // the BitTorrent client
	tracker string // the tracker script
}

// newTools builds romap2p into work (unless bin names one) and finds the
// harness's own binary.
func newTools(ctx context.Context, work, bin string) (*tools, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("tools: %w", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("tools: %w", err)
	}
	t := &tools{self: self, repos: filepath.Join(work, "repos"), cache: filepath.Join(cache, "romap2p-testbed"), romap2p: bin}
	if t.romap2p == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		t.romap2p = filepath.Join(work, "romap2p")
		say("building romap2p")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", t.romap2p, "./cmd/romap2p")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/romap2p: %w: %s", err, out)
		}
	}
	return t, nil
}

// buildSaboteur builds the saboteur build of romap2p into work.
func (t *tools) buildSaboteur(ctx context.Context, work string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	t.saboteur = filepath.Join(work, "romap2p-saboteur")
	say("building romap2p with -tags romap2p_saboteur")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "romap2p_saboteur", "-o", t.saboteur, "./cmd/romap2p")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags romap2p_saboteur ./cmd/romap2p: %w: %s", err, out)
	}
	return nil
}

// repo returns host's romap2p repo directory.
func (t *tools) repo(host string) string { return filepath.Join(t.repos, host) }

// peerIDs makes each host's repo (and so its identity) and returns the map
// from peer ID to host.
func (t *tools) peerIDs(ctx context.Context, hosts []string) (map[string]string, error) {
	ids := map[string]string{}
	for _, h := range hosts {
		if err := os.MkdirAll(t.repo(h), 0o700); err != nil {
			return nil, err
		}
		out, err := exec.CommandContext(ctx, t.romap2p, "id", "--json", "--repo", t.repo(h)).Output()
		if err != nil {
			return nil, fmt.Errorf("romap2p id for %s: %w", h, err)
		}
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(out, &v); err != nil || v.ID == "" {
			return nil, fmt.Errorf("romap2p id for %s: unreadable output %q", h, out)
		}
		ids[v.ID] = h
	}
	return ids, nil
}

// ensureBitTorrent builds the BitTorrent client with `go install` and
// installs the tracker with npm, once, into the cache directory. Neither
// enters the project's go.mod.
func (t *tools) ensureBitTorrent(ctx context.Context) error {
	t.btOnce.Do(func() { t.btErr = t.installBitTorrent(ctx) })
	return t.btErr
}

func (t *tools) installBitTorrent(ctx context.Context) error {
	bin := filepath.Join(t.cache, "torrent-"+torrentVersion)
	t.torrent = filepath.Join(bin, "torrent")
	if _, err := os.Stat(t.torrent); err != nil {
		say("building the BitTorrent client %s@%s (first use only)", torrentModule, torrentVersion)
		if err := os.MkdirAll(bin, 0o755); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "go", "install", torrentModule+"@"+torrentVersion)
		cmd.Dir = bin // outside the module: go install ignores the project's go.mod
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go install %s@%s: %w: %s", torrentModule, torrentVersion, err, out)
		}
	}
	dir := filepath.Join(t.cache, "tracker-"+trackerVersion)
	t.tracker = filepath.Join(dir, "tracker.mjs")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", trackerPackage, "server.js")); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			return fmt.Errorf("the bittorrent system needs node and npm for its tracker: %w", err)
		}
		say("installing the tracker %s@%s with npm (first use only)", trackerPackage, trackerVersion)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
			"--prefix", dir, trackerPackage+"@"+trackerVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("npm install %s@%s: %w: %s", trackerPackage, trackerVersion, err, out)
		}
	}
	if err := os.WriteFile(t.tracker, []byte(trackerScript), 0o644); err != nil {
		return fmt.Errorf("tracker script: %w", err)
	}
	return nil
}

// say prints a progress line for the user.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testbed: "+format+"\n", args...)
}
