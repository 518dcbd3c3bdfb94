package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/romap2p/romap2p/fountain"
)

func benchCommand() *command {
	c := &command{
		name:    "bench",
		summary: "measure this machine ('bench codec' times the fountain code)",
		usage:   "codec [--size BYTES] [--symbol T] [--loss FRACTION] [--kernels TIER|all] [--json]",
		example: `  romap2p bench codec
  romap2p bench codec --size 256MiB --symbol 4096 --loss 0.1 --json
  romap2p bench codec --size 64MiB --symbol 4096 --loss 0.5 --kernels all`,
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		if len(args) == 0 || args[0] != "codec" {
			if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
				printCommandHelp(env.stdout, c, nil)
				return nil
			}
			return usageError{"bench needs a subject: codec"}
		}
		fs := newFlagSet(c, env)
		size := fs.String("size", "64MiB", "bytes of random data to encode and decode (e.g. 64MiB)")
		symbol := fs.String("symbol", "4096", "symbol size T in bytes")
		loss := fs.Float64("loss", 0, "fraction of sent symbols dropped at random, in [0, 1)")
		kern := fs.String("kernels", "", "kernel tier: auto, portable, avx2, avx2gfni, avx512, neon, or all supported ones in turn (default: $"+fountain.KernelsEnv+", else the fastest)")
		asJSON := fs.Bool("json", false, "print one JSON object (an array of them with --kernels all)")
		pos, err := parseArgs(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return usageError{"bench codec takes no arguments"}
		}
		n, err := parseSize(*size)
		if err != nil || n <= 0 {
			return usageError{fmt.Sprintf("--size: %q is not a positive size", *size)}
		}
		t, err := parseSize(*symbol)
		if err != nil || t < 1 || t > 65535 {
			return usageError{fmt.Sprintf("--symbol: %q must be 1..65535 bytes", *symbol)}
		}
		if *loss < 0 || *loss >= 1 {
			return usageError{fmt.Sprintf("--loss: %v outside [0, 1)", *loss)}
		}
		tiers, err := benchTiers(*kern, env.getenv(fountain.KernelsEnv))
		if err != nil {
			return err
		}
		var results []fountain.BenchResult
		for _, k := range tiers {
			res, err := fountain.Bench(ctx, n, int(t), *loss, fountain.WithBenchBlockOptions(fountain.WithKernels(k)))
			if err != nil {
				return fmt.Errorf("bench codec (kernels %v): %w", k, err)
			}
			results = append(results, res)
			if !*asJSON {
				if err := printBench(env, res); err != nil {
					return err
				}
			}
		}
		if !*asJSON {
			return nil
		}
		if *kern == "all" {
			return json.NewEncoder(env.stdout).Encode(results)
		}
		return json.NewEncoder(env.stdout).Encode(results[0])
	}
	return c
}

// benchTiers returns the kernel tiers bench codec runs: every supported one
// for "all", else the one named by the flag or, without it, by the
// environment variable (a tier this machine lacks is an error, not a
// silent fallback).
func benchTiers(flag, envValue string) ([]fountain.Kernels, error) {
	if flag == "all" {
		return fountain.SupportedKernels(), nil
	}
	name, src := flag, "--kernels"
	if name == "" {
		name, src = envValue, fountain.KernelsEnv
	}
	k, err := fountain.ParseKernels(name)
	if err != nil {
		return nil, usageError{fmt.Sprintf("%s: %v", src, err)}
	}
	if !k.Supported() {
		return nil, usageError{fmt.Sprintf("%s: kernel tier %v is not supported on this machine (supported: %v)", src, k, fountain.SupportedKernels())}
	}
	return []fountain.Kernels{fountain.ResolveKernels(k)}, nil
}

func printBench(env *cliEnv, res fountain.BenchResult) error {
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "kernels\t%s\n", res.Kernels)
	fmt.Fprintf(tw, "data\t%s in %d block(s) of %d symbols of %d B\n", humanBytes(float64(res.Size)), res.Blocks, res.BlockSymbols, res.SymbolSize)
	fmt.Fprintf(tw, "loss\t%.1f %%\n", 100*res.Loss)
	fmt.Fprintf(tw, "encode\t%.0f MB/s (one core of %d)%s\n", res.EncodeMBps, runtime.NumCPU(), perCPU(res.EncodeCPUMBps))
	fmt.Fprintf(tw, "decode\t%.0f MB/s%s\n", res.DecodeMBps, perCPU(res.DecodeCPUMBps))
	fmt.Fprintf(tw, "overhead\t%d symbols beyond K in total\n", res.OverheadSymbols)
	return tw.Flush()
}

// perCPU formats a rate per second of CPU time, when there is one.
func perCPU(mbps float64) string {
	if mbps <= 0 {
		return ""
	}
	return fmt.Sprintf("; %.0f MB per second of CPU time", mbps)
}
