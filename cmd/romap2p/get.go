package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/romap2p/romap2p/node"
	"github.com/romap2p/romap2p/protocol"
)

// progressEvery is how often plain progress lines appear when stderr is not
// a terminal; a terminal bar is redrawn every barEvery.
const (
	progressEvery = 5 * time.Second
	barEvery      = 250 * time.Millisecond
	// The links feeding a download are recorded for the final report (a
	// finished session closes them): every sampleFirst during the first
	// sampleQuick (a short download), then every sampleEvery. (Every 20 ms
	// throughout, it took 8 % of a relay's CPU on the testbed.)
	sampleFirst = 20 * time.Millisecond
	sampleQuick = time.Second
	sampleEvery = 200 * time.Millisecond
)

func getCommand() *command {
	c := &command{
		name:    "get",
		summary: "download a file by CID, verify it, and write it out",
		usage:   "[flags] CID",
		example: `  romap2p get bafyrei... --bootstrap /ip4/192.0.2.7/tcp/4717/p2p/12D3KooW...
  romap2p get bafyrei... -o ~/Downloads/big.iso --json
  romap2p get bafyrei... -o - | tar x          # verified bytes to stdout
  romap2p get bafyrei... --timeout 2m --keep-serving
  Interrupted downloads resume when the same command is run again.`,
	}
	c.setup = func(fs *pflag.FlagSet, env *cliEnv) func(context.Context, []string) error {
		var nf nodeFlags
		nf.register(fs, env, true)
		var sv serviceFlags
		sv.register(fs, env, "")
		out := fs.StringP("output", "o", "", "output `PATH`, \"-\" for stdout (default: the file's name in the current directory, else the CID)")
		force := fs.BoolP("force", "f", false, "write over an existing output file (never over a file this repo's node serves)")
		asJSON := fs.Bool("json", false, "print one JSON object with the outcome on stdout, no progress")
		keep := fs.Bool("keep-serving", false, "keep serving the file as a seed after the download, until interrupted")
		def := node.DefaultSeedPolicy()
		seedRatio := fs.Float64("seed-ratio", def.Ratio, "after the download, serve the file until this node has uploaded `RATIO` times its size (0: no ratio bound)")
		seedTime := fs.Duration("seed-time", def.Time, "after the download, serve the file at most `DURATION` (0: no time bound)")
		noSeed := fs.Bool("no-seed", false, "exit as soon as the file is verified, without serving it to the peers still fetching it")
		parentList := fs.StringSlice("parents", nil, "multiaddrs of fixed parents (an explicit tree), comma-separated")
		quiet := fs.BoolP("quiet", "q", false, "no progress output")
		timeout := fs.DurationP("timeout", "t", 0, "give up after `DURATION` (e.g. 30s, 5m; 0: never)")
		return func(ctx context.Context, pos []string) error {
			if len(pos) != 1 {
				return usageError{"get needs exactly one CID"}
			}
			c, err := parseCID(pos[0])
			if err != nil {
				return err
			}
			parentsAI, err := node.ParseAddrInfos(*parentList)
			if err != nil {
				return usageError{fmt.Sprintf("--parents: %v", err)}
			}
			if *timeout < 0 {
				return usageError{"--timeout must not be negative"}
			}
			seedPolicy := node.SeedPolicy{Ratio: *seedRatio, Time: *seedTime, Idle: def.Idle}
			if err := seedPolicy.Validate(); err != nil {
				return usageError{fmt.Sprintf("--seed-ratio/--seed-time: %v", err)}
			}
			if *keep && *noSeed {
				return usageError{"--keep-serving and --no-seed exclude each other"}
			}
			toStdout := *out == "-"
			if toStdout && (*asJSON || *keep) {
				return usageError{"-o - writes the file to stdout: it excludes --json and --keep-serving"}
			}
			if err := nf.check(); err != nil {
				return err
			}
			hook, err := newGetHook(env)
			if err != nil {
				return err
			}
			nf.wrap = hook.shaper()
			// Notes about the repo wait until the command line is known good.
			var notes bytes.Buffer
			opts, repo, err := nf.options(busyFresh, &notes)
			if err != nil {
				return err
			}
			defer repo.Close()
			var dest string
			named := true
			if toStdout {
				tmp, err := os.MkdirTemp("", "romap2p-get-")
				if err != nil {
					return fmt.Errorf("temporary directory: %w", err)
				}
				defer os.RemoveAll(tmp)
				dest = filepath.Join(tmp, c.String())
			} else {
				dest, named = outputPath(*out, c)
				if err := checkOutput(dest, *force, repo.served()); err != nil {
					return err
				}
			}
			_, _ = notes.WriteTo(env.stderr)
			var gopts []node.GetOption
			if len(parentsAI) > 0 {
				gopts = append(gopts, node.WithParents(parentsAI...))
			}
			if toStdout {
				// Each block goes out as soon as it is verified, in order.
				gopts = append(gopts, node.WithWriter(env.stdout))
			}
			n, err := node.New(ctx, opts...)
			if err != nil {
				return fmt.Errorf("start node: %w", err)
			}
			defer n.Close()
			hook.started(n, c)
			defer hook.close()
			if *keep && sv.api == "" {
				sv.api = defaultAPI
				if v := env.getenv("ROMAP2P_API"); v != "" {
					sv.api = v
				}
			}
			stop, err := sv.start(n, repo.dir, env)
			if err != nil {
				return err
			}
			defer stop()
			if !nf.noMDNS {
				lan, err := startLAN(ctx, n)
				if err != nil {
					fmt.Fprintf(env.stderr, "romap2p: no LAN discovery: %v\n", err)
				} else {
					defer lan.Close()
					if len(nf.bootstrap) == 0 && len(parentsAI) == 0 {
						gopts = append(gopts, node.WithPeers(lan.Wait(ctx, lanWait)...))
					}
				}
			}

			gctx, gcancel := ctx, context.CancelFunc(func() {})
			if *timeout > 0 {
				gctx, gcancel = context.WithTimeout(ctx, *timeout)
			}
			defer gcancel()
			start := time.Now()
			track := newLinkTracker()
			rctx, rcancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); track.run(rctx, n, c) }()
			if !*asJSON && !*quiet {
				r := newReporter(env.stderr)
				r.connected = func() int { return len(n.Host().Network().Peers()) }
				r.asked = len(nf.bootstrap) + len(parentsAI)
				wg.Add(1)
				go func() { defer wg.Done(); r.run(rctx, n, c, start) }()
			}
			err = n.Get(gctx, c, dest, gopts...)
			rcancel()
			wg.Wait()
			if err != nil {
				switch {
				case ctx.Err() != nil && toStdout:
					return interruptedError{"interrupted"}
				case ctx.Err() != nil:
					return interruptedError{fmt.Sprintf("interrupted; run the same command again to resume (partial download kept in %s.part)", dest)}
				case gctx.Err() != nil:
					return fmt.Errorf("get %s: no verified file within --timeout %v (%d peers connected): %w", c, *timeout, len(n.Host().Network().Peers()), err)
				case errors.Is(err, node.ErrNoPeers) && len(nf.bootstrap) == 0:
					return fmt.Errorf("get %s: %w (name a peer with --bootstrap)", c, err)
				}
				return fmt.Errorf("get %s: %w", c, err)
			}
			p, _ := n.Progress(c)
			track.sample(p)
			res := newGetResult(p, dest, time.Since(start), track.links())
			if toStdout {
				if !*quiet {
					fmt.Fprintf(env.stderr, "%s (%s in %.1f s, %s)\n", c, humanBytes(float64(res.Size)), res.Seconds, humanRate(res.GoodputBps))
				}
				return nil
			}
			final := dest
			if !named {
				final = rename(dest, p.Name, env.stderr)
			}
			res.Path = final
			if *asJSON {
				if err := json.NewEncoder(env.stdout).Encode(res); err != nil {
					return fmt.Errorf("write result: %w", err)
				}
			} else {
				fmt.Fprintf(env.stdout, "%s  %s (%s in %.1f s, %s)\n", final, c, humanBytes(float64(res.Size)), res.Seconds, humanRate(res.GoodputBps))
			}
			switch {
			case *keep:
				fmt.Fprintln(env.stderr, "romap2p get: download complete; serving it until interrupted")
				<-ctx.Done()
			case !*noSeed:
				return seed(ctx, env, n, c, seedPolicy, *quiet)
			}
			return nil
		}
	}
	return c
}

// lanWait is how long get listens for peers on the LAN before it asks them.
const lanWait = 1500 * time.Millisecond

// checkOutput refuses a download path that would replace a file the
// repo's node serves (always) or any existing file (unless force).
func checkOutput(dest string, force bool, served []string) error {
	st, err := os.Stat(dest)
	if err != nil {
		return nil
	}
	for _, s := range served {
		if sst, err := os.Stat(s); err == nil && os.SameFile(st, sst) {
			return usageError{fmt.Sprintf("%s is a file this node serves; never written over, choose another path with -o", dest)}
		}
	}
	if !force {
		return usageError{fmt.Sprintf("%s exists; --force replaces it, or choose another path with -o", dest)}
	}
	return nil
}

// parseCID reads and checks a content ID; a malformed one is a usage error.
func parseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, usageError{fmt.Sprintf("%q is not a CID: %v", s, err)}
	}
	if err := protocol.CheckCID(c); err != nil {
		return cid.Undef, usageError{fmt.Sprintf("%s is not a romap2p CID: %v", s, err)}
	}
	return c, nil
}

// outputPath chooses where the download goes. Without -o it is the CID in
// the current directory (so an interrupted run resumes from the same
// partial files), renamed to the file's own name once complete; named
// reports whether the user chose the name.
func outputPath(flagValue string, c cid.Cid) (path string, named bool) {
	if flagValue == "" {
		return c.String(), false
	}
	if st, err := os.Stat(flagValue); err == nil && st.IsDir() {
		return filepath.Join(flagValue, c.String()), false
	}
	return flagValue, true
}

// rename moves a finished download from its CID-named path to the name in
// the manifest, next to it, unless that name is unsafe or already taken.
func rename(path, name string, warn io.Writer) string {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return path
	}
	to := filepath.Join(filepath.Dir(path), name)
	if _, err := os.Lstat(to); err == nil {
		fmt.Fprintf(warn, "romap2p get: %s exists; the download stays in %s\n", to, path)
		return path
	}
	if err := os.Rename(path, to); err != nil {
		fmt.Fprintf(warn, "romap2p get: keeping %s: %v\n", path, err)
		return path
	}
	return to
}

// newReporter draws progress on w, as a bar if w is a terminal.
func newReporter(w io.Writer) *reporter {
	r := &reporter{w: w, every: progressEvery}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.terminal, r.every = true, barEvery
		r.width = func() int {
			wd, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 0
			}
			return wd
		}
	}
	return r
}

// linkTracker remembers the upstreams that fed a download: a session closes
// them when it completes, so they are sampled while it runs.
type linkTracker struct {
	mu   sync.Mutex
	seen map[linkKey]node.Link
}

type linkKey struct {
	peer   peer.ID
	stripe int
}

func newLinkTracker() *linkTracker { return &linkTracker{seen: make(map[linkKey]node.Link)} }

func (t *linkTracker) run(ctx context.Context, src progressSource, c cid.Cid) {
	tk := time.NewTicker(sampleFirst)
	defer tk.Stop()
	quick := time.Now().Add(sampleQuick)
	for {
		if p, ok := src.Progress(c); ok {
			t.sample(p)
		}
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			if !quick.IsZero() && now.After(quick) {
				tk.Reset(sampleEvery)
				quick = time.Time{}
			}
		}
	}
}

// sample records the upstreams of a snapshot; counters only grow, so a
// link keeps its highest count (a reconnect restarts them).
func (t *linkTracker) sample(p node.Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, u := range p.Upstreams {
		k := linkKey{u.Peer, u.Stripe}
		if old, ok := t.seen[k]; ok {
			u.Symbols, u.Fresh = max(old.Symbols, u.Symbols), max(old.Fresh, u.Fresh)
			u.Probe = u.Probe && old.Probe
		}
		t.seen[k] = u
	}
}

// links lists the recorded upstreams, busiest first.
func (t *linkTracker) links() []node.Link {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]node.Link, 0, len(t.seen))
	for _, l := range t.seen {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Fresh != out[j].Fresh {
			return out[i].Fresh > out[j].Fresh
		}
		return out[i].Peer < out[j].Peer
	})
	return out
}

// upstreamJSON is one upstream in get's JSON result.
type upstreamJSON struct {
	Peer    string `json:"peer"`
	Stripe  int    `json:"stripe"`
	Symbols uint64 `json:"symbols"`
	Fresh   uint64 `json:"fresh"`
	Probe   bool   `json:"probe,omitempty"`
}

// getResult is what `get --json` prints.
type getResult struct {
	CID           string         `json:"cid"`
	Name          string         `json:"name"`
	Path          string         `json:"path"`
	Size          int64          `json:"size"`
	OK            bool           `json:"ok"`
	Seconds       float64        `json:"seconds"`
	GoodputBps    float64        `json:"goodput_bps"`
	Blocks        int            `json:"blocks"`
	SymbolsIn     uint64         `json:"symbols_in"`
	SymbolsNew    uint64         `json:"symbols_new"`
	SymbolsNeeded uint64         `json:"symbols_needed"`
	WasteProbe    uint64         `json:"waste_probe"`
	WasteDone     uint64         `json:"waste_done"`
	WasteRepeat   uint64         `json:"waste_repeat"`
	Upstreams     []upstreamJSON `json:"upstreams"`
	Parents       []string       `json:"parents"`
	Blamed        []blameJSON    `json:"blamed"`
	BadSymbols    uint64         `json:"bad_symbols"`
	// Completed is when the last block was verified (RFC 3339, the
	// machine's clock), to set beside the blames' times.
	Completed string `json:"completed,omitempty"`
}

// newGetResult summarises a finished download.
func newGetResult(p node.Progress, path string, took time.Duration, links []node.Link) getResult {
	r := getResult{
		CID: p.CID.String(), Name: p.Name, Path: path, Size: p.Size, OK: p.Done && p.Err == nil,
		Seconds: took.Seconds(), Blocks: p.Blocks,
		SymbolsIn: p.SymbolsIn, SymbolsNew: p.SymbolsNew, SymbolsNeeded: p.Needed,
		WasteProbe: p.WasteProbe, WasteDone: p.WasteDone, WasteRepeat: p.WasteRepeat,
		Upstreams: []upstreamJSON{}, Parents: []string{},
		Blamed: blamesJSON(p.Blamed), BadSymbols: p.BadSymbols,
		Completed: timeJSON(p.Completed),
	}
	if !p.Completed.IsZero() && p.Completed.After(p.Started) {
		r.Seconds = p.Completed.Sub(p.Started).Seconds()
	}
	if r.Seconds > 0 {
		r.GoodputBps = float64(p.Size) / r.Seconds
	}
	seen := map[string]bool{}
	for _, l := range links {
		r.Upstreams = append(r.Upstreams, upstreamJSON{Peer: l.Peer.String(), Stripe: l.Stripe, Symbols: l.Symbols, Fresh: l.Fresh, Probe: l.Probe})
		if !l.Probe && l.Fresh > 0 && !seen[l.Peer.String()] {
			seen[l.Peer.String()] = true
			r.Parents = append(r.Parents, l.Peer.String())
		}
	}
	return r
}

// seed serves a completed download to the peers still fetching it, as the
// policy says, and tells the user so on stderr unless quiet.
func seed(ctx context.Context, env *cliEnv, n *node.Node, c cid.Cid, p node.SeedPolicy, quiet bool) error {
	if !quiet {
		var bounds []string
		if p.Ratio > 0 {
			bounds = append(bounds, fmt.Sprintf("it has uploaded %.3g times the file", p.Ratio))
		}
		if p.Time > 0 {
			bounds = append(bounds, "for "+p.Time.String())
		}
		until := ""
		if len(bounds) > 0 {
			until = " until " + strings.Join(bounds, " or ")
		}
		fmt.Fprintf(env.stderr, "romap2p get: seeding: serving the file to peers still fetching it%s, while they take from it (Ctrl-C stops; --no-seed skips this)\n", until)
	}
	res, err := n.Seed(ctx, c, p)
	if err != nil {
		if errors.Is(err, node.ErrClosed) {
			return nil
		}
		return fmt.Errorf("seed %s: %w", c, err)
	}
	if !quiet {
		why := map[string]string{"ratio": "ratio reached", "time": "time is up", "idle": "no peer takes from it", "interrupted": "interrupted"}[res.Reason]
		fmt.Fprintf(env.stderr, "romap2p get: stopped seeding (%s): uploaded %s in %.1f s\n", why, humanBytes(float64(res.Uploaded)), res.Seeded.Seconds())
	}
	return nil
}
