package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/romap2p/romap2p/internal/swarm"
	"github.com/romap2p/romap2p/node"
	"github.com/romap2p/romap2p/protocol"
	"github.com/romap2p/romap2p/treebuild"
)

// swarmFlags are the flags of `romap2p swarm`.
type swarmFlags struct {
	matrix       string
	source       string
	peers        int
	rate         float64
	size         string
	stripes      int
	uplink       float64
	downlink     float64
	stagger      time.Duration
	backPressure bool
	tree         string
	maxChildren  int
	timeout      time.Duration
	asJSON       bool
	report       string
	quiet        bool
	dir          string
	seed         uint64
}

func (f *swarmFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.matrix, "matrix", "", "rate matrix `FILE` in Mbit/s (format of the paper's Table I, with optional '# access HOST MBIT' lines); default: the embedded Table I")
	fs.StringVar(&f.source, "source", "", "`NAME` of the host that serves the file (default UW for Table I, 'source' for a uniform swarm)")
	fs.IntVar(&f.peers, "peers", 0, "run a uniform swarm of `N` receivers instead of a matrix")
	fs.Float64Var(&f.rate, "rate", 0, "pair rate in `MBIT`/s of a uniform swarm (0: only the access caps limit)")
	fs.StringVar(&f.size, "size", "64MiB", "file `SIZE` in bytes (suffixes KiB, MiB, GiB, KB, MB, GB)")
	fs.IntVar(&f.stripes, "stripes", 8, "number of stripes, each with its own tree (1: the paper's single tree)")
	fs.Float64Var(&f.uplink, "uplink", 100, "uplink cap in `MBIT`/s of every host without its own (0: none)")
	fs.Float64Var(&f.downlink, "downlink", 100, "downlink cap in `MBIT`/s of every host without its own (0: none)")
	fs.DurationVar(&f.stagger, "stagger", 0, "time between successive receivers' joins (`DURATION`)")
	fs.BoolVar(&f.backPressure, "backpressure", false, "relay store-and-forward with back-pressure (the baseline ROMA improves on)")
	fs.StringVar(&f.tree, "tree", "auto", "`MODE`: auto (peers choose parents), widest (fix the centralised widest-path tree), direct (everyone from the source)")
	fs.IntVar(&f.maxChildren, "max-children", 0, "children per node and stripe (0: the node's default)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up after `DURATION`")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as one JSON object on stdout")
	fs.StringVar(&f.report, "report", "", "write chart.svg, chart.png, tree-stripes.svg (one tree per stripe), tree.svg and tree.dot into `DIR`")
	fs.BoolVar(&f.quiet, "quiet", false, "no live table")
	fs.StringVar(&f.dir, "dir", "", "keep the input and output files in `DIR` (default: a temporary directory, removed at the end)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the random file's content")
}

// config turns the flags into a swarm configuration.
func (f *swarmFlags) config() (swarm.Config, error) {
	size, err := parseSize(f.size)
	if err != nil {
		return swarm.Config{}, usageError{fmt.Sprintf("--size: %v", err)}
	}
	if size <= 0 {
		return swarm.Config{}, usageError{"--size must be positive"}
	}
	switch {
	case f.stripes < 1 || f.stripes > protocol.MaxStripes:
		return swarm.Config{}, usageError{fmt.Sprintf("--stripes: %d outside 1..%d", f.stripes, protocol.MaxStripes)}
	case f.uplink < 0 || f.downlink < 0 || f.rate < 0:
		return swarm.Config{}, usageError{"rates must not be negative"}
	case f.stagger < 0:
		return swarm.Config{}, usageError{"--stagger must not be negative"}
	case f.timeout <= 0:
		return swarm.Config{}, usageError{"--timeout must be positive"}
	case f.peers < 0:
		return swarm.Config{}, usageError{"--peers must not be negative"}
	case f.peers > 0 && f.matrix != "":
		return swarm.Config{}, usageError{"--peers and --matrix exclude each other"}
	case f.peers == 0 && f.rate != 0:
		return swarm.Config{}, usageError{"--rate needs --peers"}
	}
	var m *treebuild.RateMatrix
	source := f.source
	switch {
	case f.peers > 0:
		if source == "" {
			source = "source"
		}
		if m, err = swarm.Uniform(source, f.peers, treebuild.FromMbit(f.rate)); err != nil {
			return swarm.Config{}, usageError{err.Error()}
		}
	case f.matrix != "":
		file, err := os.Open(f.matrix)
		if err != nil {
			return swarm.Config{}, fmt.Errorf("--matrix: %w", err)
		}
		m, err = treebuild.ParseMatrix(file)
		file.Close()
		if err != nil {
			return swarm.Config{}, usageError{fmt.Sprintf("--matrix %s: %v", f.matrix, err)}
		}
		if source == "" {
			source = m.Name(0)
			if _, ok := m.Index(swarm.TableISource); ok {
				source = swarm.TableISource
			}
		}
	default:
		if m, err = swarm.TableI(); err != nil {
			return swarm.Config{}, err
		}
		if source == "" {
			source = swarm.TableISource
		}
	}
	if _, ok := m.Index(source); !ok {
		return swarm.Config{}, usageError{fmt.Sprintf("--source %q is not a host of the matrix (hosts: %v)", source, m.Hosts())}
	}
	cfg := swarm.Config{
		Matrix:   m,
		Source:   source,
		Size:     size,
		Stripes:  f.stripes,
		Uplink:   treebuild.FromMbit(f.uplink),
		Downlink: treebuild.FromMbit(f.downlink),
		Stagger:  f.stagger,
		Dir:      f.dir,
		Seed:     f.seed,
	}
	if f.backPressure {
		cfg.NodeOptions = append(cfg.NodeOptions, node.WithBackPressure())
	}
	if f.maxChildren > 0 {
		cfg.NodeOptions = append(cfg.NodeOptions, node.WithMaxChildren(f.maxChildren))
	}
	switch f.tree {
	case "auto":
	case "widest":
		if cfg.Parents, err = swarm.WidestParents(m, source, cfg.Uplink, cfg.Downlink); err != nil {
			return swarm.Config{}, err
		}
	case "direct":
		cfg.Parents = map[string]string{}
		for _, h := range m.Hosts() {
			if h != source {
				cfg.Parents[h] = source
			}
		}
	default:
		return swarm.Config{}, usageError{fmt.Sprintf("--tree %q: want auto, widest or direct", f.tree)}
	}
	return cfg, nil
}

func swarmCommand() *command {
	c := &command{
		name:    "swarm",
		summary: "run a source and many receivers in this process on loopback TCP, with emulated per-pair rates (the paper's Table I by default), and compare every receiver's goodput with the ideal tree and direct unicast",
		usage:   "[flags]",
		example: "  romap2p swarm\n" +
			"  romap2p swarm --size 16MiB --stagger 2s --report out/\n" +
			"  romap2p swarm --peers 20 --rate 50 --uplink 100 --json\n" +
			"  romap2p swarm --matrix rates.tsv --source A --tree widest\n" +
			"  romap2p swarm --backpressure     # the store-and-forward baseline",
	}
	c.setup = func(fs *pflag.FlagSet, env *cliEnv) func(context.Context, []string) error {
		var f swarmFlags
		f.register(fs)
		return func(ctx context.Context, pos []string) error {
			if len(pos) > 0 {
				return usageError{"swarm takes no arguments"}
			}
			cfg, err := f.config()
			if err != nil {
				return err
			}
			if env.getenv("GOMEMLIMIT") == "" {
				// Every host of the swarm is a whole node in this process: the
				// soft heap limit of one romap2p process applies per host.
				debug.SetMemoryLimit(int64(defaultMemoryLimit) * int64(cfg.Matrix.Len()))
			}
			if f.report != "" {
				if err := os.MkdirAll(f.report, 0o755); err != nil {
					return fmt.Errorf("--report: %w", err)
				}
			}
			ctx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			var opts []swarm.Option
			live := newSwarmLive(env, f.asJSON)
			if !f.quiet {
				opts = append(opts, swarm.OnTick(live.tick))
			}
			res, runErr := swarm.Run(ctx, cfg, opts...)
			if res == nil {
				return runErr
			}
			if f.asJSON {
				enc := json.NewEncoder(env.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return fmt.Errorf("write JSON: %w", err)
				}
			} else {
				if err := writeSwarmSummary(env.stdout, res); err != nil {
					return err
				}
			}
			if f.report != "" {
				if err := writeSwarmReport(f.report, res); err != nil {
					return err
				}
				if !f.asJSON {
					fmt.Fprintf(env.stdout, "report: %s (chart.svg, chart.png, tree-stripes.svg, tree.svg, tree.dot)\n", f.report)
				}
			}
			if runErr != nil {
				if errors.Is(runErr, context.DeadlineExceeded) {
					return fmt.Errorf("timed out after %v: %w", f.timeout, runErr)
				}
				return runErr
			}
			failed := 0
			for _, p := range res.Peers {
				if !p.OK {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d receivers did not get a verified file", failed, len(res.Peers))
			}
			return nil
		}
	}
	return c
}

// swarmTerminal reports whether w is a terminal.
func swarmTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
