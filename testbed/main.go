// Command testbed runs romap2p and the systems users would pick instead on
// real kernel TCP in network namespaces: one namespace per host on a
// bridge, every pair of hosts at its own rate from a matrix file, every
// host behind its own access link. See testbed/README.md.
//
//	go run ./testbed up       --matrix FILE [--scale F]
//	go run ./testbed down
//	go run ./testbed validate --matrix FILE [--scale F] [--pairs N]
//	go run ./testbed run      --matrix FILE --source HOST --size SIZE --out DIR [...]
//	go run ./testbed bounds   --matrix FILE --source HOST --size SIZE [--scale F]
//	go run ./testbed gen      N REGIONS SEED [--slow K] > FILE
//	go run ./testbed report   DIR
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: go run ./testbed SUBCOMMAND [flags]

  up        bring a matrix's topology up and keep it until Ctrl-C
  down      remove what a killed testbed left behind
  validate  measure plain TCP on sampled pairs against the matrix
  run       run systems side by side and write result.json, result.md, result.svg
  bounds    print what a matrix predicts (no root needed)
  gen       write a random matrix: gen N REGIONS SEED [--slow K]
  report    rewrite result.md and the charts of DIR from its result.json

Run "go run ./testbed SUBCOMMAND -h" for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:])
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "testbed:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return flag.ErrHelp
	}
	rest := args[1:]
	switch args[0] {
	case "up":
		return cmdUp(ctx, rest)
	case "down":
		return cmdDown(ctx, rest)
	case "validate":
		return cmdValidate(ctx, rest)
	case "run":
		return cmdRun(ctx, rest)
	case "bounds":
		return cmdBounds(rest)
	case "gen":
		return cmdGen(rest)
	case "report":
		return cmdReport(rest)
	case "_http":
		return helperHTTP(ctx, rest)
	case "_fetch":
		return helperFetch(ctx, rest)
	case "_sink":
		return helperSink(ctx, rest)
	case "_send":
		return helperSend(ctx, rest)
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// matrixFlags are the flags every topology subcommand shares.
type matrixFlags struct {
	matrix         string
	wait           bool
	up, down       float64
	scale          float64
	cc             string
	source, sizeIn string
}

func (mf *matrixFlags) register(fs *flag.FlagSet, withCase bool) {
	fs.StringVar(&mf.matrix, "matrix", "", "matrix FILE: tab-separated, row = receiver, column = sender, Mbit/s")
	fs.Float64Var(&mf.up, "uplink", 100, "uplink cap, Mbit/s, of hosts without a '# access' line")
	fs.Float64Var(&mf.down, "downlink", 100, "downlink cap, Mbit/s, of hosts without a '# access' line")
	fs.Float64Var(&mf.scale, "scale", 1, "multiply every rate and cap by F")
	fs.BoolVar(&mf.wait, "wait", false, "wait for another testbed to finish instead of refusing")
	fs.StringVar(&mf.cc, "cc", "", "TCP congestion control of every host, e.g. reno or cubic (loss-based: queues fill) or bbr (default: this machine's)")
	if withCase {
		fs.StringVar(&mf.source, "source", "", "the HOST that has the file")
		fs.StringVar(&mf.sizeIn, "size", "", "file SIZE (bytes, or with KiB, MiB, GiB)")
	}
}

func (mf *matrixFlags) check(withCase bool) error {
	if mf.matrix == "" {
		return errors.New("--matrix FILE is required")
	}
	if withCase && mf.source == "" {
		return errors.New("--source HOST is required")
	}
	if withCase && mf.sizeIn == "" {
		return errors.New("--size SIZE is required")
	}
	return nil
}

// parseSize reads 64MiB, 8M, 512KiB, 1GiB or a byte count.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v <= 0 || v*float64(mult) > 1<<40 {
		return 0, fmt.Errorf("size %q: want a positive size such as 64MiB", s)
	}
	return int64(v * float64(mult)), nil
}

func cmdUp(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	var mf matrixFlags
	mf.register(fs, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := mf.check(false); err != nil {
		return err
	}
	m, err := loadMatrix(mf.matrix, mf.up, mf.down, mf.scale)
	if err != nil {
		return err
	}
	t, err := upTopology(ctx, m, mf.wait, mf.cc)
	if err != nil {
		return err
	}
	defer t.Close()
	for i := range m.Len() {
		fmt.Printf("%-10s %-15s ip netns exec %s ...\n", m.Name(i), t.addrs[i], t.ns(i))
	}
	fmt.Println("up; press Ctrl-C to take it down")
	<-ctx.Done()
	return nil
}

func cmdDown(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("down takes no arguments")
	}
	if err := checkTools(); err != nil {
		return err
	}
	lock, err := acquireLock(ctx, false)
	if err != nil {
		return err
	}
	defer releaseLock(lock)
	names, err := staleNamespaces(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := sh(ctx, "ip", "netns", "del", n); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Println("deleted", n)
		}
	}
	if len(names) == 0 {
		fmt.Println("nothing to remove")
	}
	return errors.Join(errs...)
}

func cmdRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var mf matrixFlags
	mf.register(fs, true)
	stagger := fs.Float64("stagger", 0, "start receivers S seconds apart (0: all at once)")
	runs := fs.Int("runs", 1, "runs of every system (systems alternate run by run)")
	systems := fs.String("systems", "romap2p,bittorrent", "comma-separated systems: "+strings.Join(systemNames, ", ")+", or all")
	out := fs.String("out", "", "output DIR")
	timeout := fs.Float64("timeout", 0, "seconds one system run may take (0: 60 + 10 x the slowest bound; http, direct: 60 + 3 x the direct transfers in a row)")
	bin := fs.String("romap2p", "", "romap2p binary to use (default: build ./cmd/romap2p)")
	keep := fs.Bool("keep", false, "keep the work directory and copy every process's log into DIR/logs")
	saboteur := fs.String("saboteur", "", "HOST that runs romap2p built with -tags romap2p_saboteur, corrupting what it relays (see --sabotage)")
	sabotage := fs.String("sabotage", "all,honest", "with --saboteur: comma-separated MODES, each run as system SYSTEM+sab-MODE: "+strings.Join(sabotageModes, ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := mf.check(true); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out DIR is required")
	}
	size, err := parseSize(mf.sizeIn)
	if err != nil {
		return err
	}
	if *runs < 1 || *stagger < 0 {
		return errors.New("--runs must be at least 1 and --stagger not negative")
	}
	sys, modes, err := parseRunSystems(*systems, *saboteur, *sabotage, fs)
	if err != nil {
		return err
	}
	cfg := runConfig{Matrix: mf.matrix, Source: mf.source, SizeBytes: size, Scale: mf.scale,
		UplinkMbit: mf.up, DownlinkMbit: mf.down, StaggerS: *stagger, Runs: *runs, Systems: sys,
		TimeoutS: *timeout, CC: mf.cc, Saboteur: *saboteur, Sabotage: modes,
		out: *out, romap2p: *bin, keep: *keep, wait: mf.wait}
	start := time.Now()
	res, err := runCase(ctx, cfg)
	if res != nil {
		say("wrote %s/result.json, result.md, result.svg in %.0f s", *out, time.Since(start).Seconds())
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, sr := range res.Systems {
		for _, r := range sr.Runs {
			failed += len(r.Receivers) - countOK(r)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d receiver runs did not end with a verified copy (see %s/result.md)", failed, *out)
	}
	if bad := sabotageFailures(res); len(bad) > 0 {
		return fmt.Errorf("sabotage: %s (see %s/result.md)", strings.Join(bad, "; "), *out)
	}
	return nil
}

// parseRunSystems reads --systems, and with --saboteur replaces each
// romap2p system by one per --sabotage mode.
func parseRunSystems(systems, saboteur, sabotage string, fs *flag.FlagSet) (sys, modes []string, err error) {
	sys, err = parseSystems(systems)
	if err != nil {
		return nil, nil, err
	}
	if saboteur == "" {
		sabotageSet := false
		fs.Visit(func(f *flag.Flag) { sabotageSet = sabotageSet || f.Name == "sabotage" })
		if sabotageSet {
			return nil, nil, errors.New("--sabotage needs --saboteur HOST")
		}
		return sys, nil, nil
	}
	if modes, err = parseSabotage(sabotage); err != nil {
		return nil, nil, err
	}
	if sys, err = withSabotage(sys, modes); err != nil {
		return nil, nil, err
	}
	return sys, modes, nil
}

func parseSystems(s string) ([]string, error) {
	if s == "all" {
		return systemNames, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		known := false
		for _, n := range systemNames {
			known = known || n == p
		}
		if !known {
			return nil, fmt.Errorf("unknown system %q (known: %s)", p, strings.Join(systemNames, ", "))
		}
		for _, o := range out {
			if o == p {
				return nil, fmt.Errorf("system %q named twice", p)
			}
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("--systems names no system")
	}
	return out, nil
}

func cmdBounds(args []string) error {
	fs := flag.NewFlagSet("bounds", flag.ContinueOnError)
	var mf matrixFlags
	mf.register(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := mf.check(true); err != nil {
		return err
	}
	size, err := parseSize(mf.sizeIn)
	if err != nil {
		return err
	}
	m, err := loadMatrix(mf.matrix, mf.up, mf.down, mf.scale)
	if err != nil {
		return err
	}
	src, ok := m.Index(mf.source)
	if !ok {
		return fmt.Errorf("source %q is not a host of %s", mf.source, mf.matrix)
	}
	a, err := analyse(m, src, float64(size))
	if err != nil {
		return err
	}
	res := &result{Receivers: a.Receivers}
	fmt.Printf("%-10s %8s %9s %9s %9s %9s %8s  %s\n", "RECEIVER", "BOUND_S", "MAXFLOW", "WIDTH", "EQ2", "DIRECT", "TREE_S", "PARENT")
	for _, h := range sortedReceivers(res) {
		rb := a.Receivers[h]
		fmt.Printf("%-10s %8.2f %9.1f %9.1f %9.1f %9.1f %8.2f  %s\n", h, rb.BoundS, rb.MaxFlowMbit, rb.WidthMbit, rb.Eq2Mbit, rb.DirectMbit, rb.TreeS, rb.Parent)
	}
	fmt.Printf("whole-swarm bound_s %.2f (source %.2f, aggregate %.2f, flow %.2f); rates in Mbit/s\n",
		a.Whole.Seconds, a.Whole.Source, a.Whole.Aggregate, a.Whole.Flow)
	return nil
}

func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	slow := fs.Int("slow", -1, "hosts behind slow access links (default: a third)")
	slowMin := fs.Float64("slow-min", 3, "slowest access link, Mbit/s")
	slowMax := fs.Float64("slow-max", 6, "fastest slow access link, Mbit/s")
	// Positional arguments first, flags after them.
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	pos = append(pos, fs.Args()...)
	if len(pos) != 3 {
		return errors.New("usage: gen N REGIONS SEED [--slow K] [--slow-min MBIT] [--slow-max MBIT]")
	}
	var nums [3]int
	for i, p := range pos {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return fmt.Errorf("gen: %q is not a non-negative integer", p)
		}
		nums[i] = v
	}
	o := defaultGen(nums[0], nums[1], uint64(nums[2]))
	if *slow >= 0 {
		o.Slow = *slow
	}
	o.SlowMin, o.SlowMax = *slowMin, *slowMax
	m, err := gen(o)
	if err != nil {
		return err
	}
	fmt.Print(genHeader(o))
	_, err = m.WriteTo(os.Stdout)
	return err
}

func cmdReport(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: report DIR (a directory with a result.json)")
	}
	b, err := os.ReadFile(filepath.Join(args[0], "result.json"))
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var res result
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("report: %s: %w", args[0], err)
	}
	return writeResults(args[0], &res)
}
