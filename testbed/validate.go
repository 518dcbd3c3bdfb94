package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/romap2p/romap2p/treebuild"
)

// pair is one ordered pair of hosts.
type pair struct{ from, to int }

// samplePairs picks up to n ordered pairs; with n <= 0 or n at least the
// number of pairs, all of them.
func samplePairs(hosts, n int, seed uint64) []pair {
	var all []pair
	for i := range hosts {
		for j := range hosts {
			if i != j {
				all = append(all, pair{i, j})
			}
		}
	}
	if n <= 0 || n >= len(all) {
		return all
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	rng.Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
	return all[:n]
}

// within reports whether got is within tol (a fraction) of want.
func within(got, want, tol float64) bool {
	return want > 0 && math.Abs(got-want) <= tol*want
}

func cmdValidate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	var mf matrixFlags
	mf.register(fs, false)
	pairs := fs.Int("pairs", 12, "ordered pairs to measure, sampled (0: all)")
	secs := fs.Float64("seconds", 6, "length of each flow")
	warm := fs.Float64("warmup", 1.5, "seconds of each flow left out of its rate (slow start)")
	seed := fs.Uint64("seed", 1, "seed of the pair sample")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := mf.check(false); err != nil {
		return err
	}
	if *secs <= *warm || *warm < 0 {
		return errors.New("--seconds must exceed --warmup")
	}
	m, err := loadMatrix(mf.matrix, mf.up, mf.down, mf.scale)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	t, err := upTopology(ctx, m, mf.wait, mf.cc)
	if err != nil {
		return err
	}
	defer t.Close()
	work, err := os.MkdirTemp("", "romap2p-testbed-validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Printf("%-10s %-10s %10s %10s %7s\n", "FROM", "TO", "MATRIX", "MEASURED", "ERROR")
	bad := 0
	ps := samplePairs(m.Len(), *pairs, *seed)
	for k, p := range ps {
		want := 8 * m.Rate(p.from, p.to)
		got, err := measurePair(ctx, t, self, p, *secs, *warm, filepath.Join(work, strconv.Itoa(k)))
		if err != nil {
			return err
		}
		mark := ""
		if !within(got, want, 0.10) {
			mark, bad = "  OUT OF 10 %", bad+1
		}
		fmt.Printf("%-10s %-10s %10.2f %10.2f %+6.1f%%%s\n", m.Name(p.from), m.Name(p.to),
			treebuild.Mbit(want/8), got/1e6, 100*(got-want)/want, mark)
	}
	fmt.Printf("%d of %d pairs within 10 %% of the matrix (Mbit/s; scale %g)\n", len(ps)-bad, len(ps), mf.scale)
	if bad > 0 {
		return fmt.Errorf("%d pairs out of tolerance", bad)
	}
	return nil
}

// measurePair runs one plain TCP flow and returns its rate in bit/s.
func measurePair(ctx context.Context, t *topology, self string, p pair, secs, warm float64, logBase string) (float64, error) {
	addr := fmt.Sprintf("%s:5201", t.addrs[p.to])
	var rate float64
	sink, err := startProc("sink", t.command(ctx, p.to, self, "_sink", addr, fmt.Sprint(warm)), logBase+"-sink.log",
		func(stdout bool, line string) (bool, map[string]any) {
			if stdout && strings.HasPrefix(line, "rate ") {
				rate, _ = strconv.ParseFloat(strings.TrimPrefix(line, "rate "), 64)
			}
			return stdout && line == "listening", nil
		})
	if err != nil {
		return 0, err
	}
	defer sink.stop()
	if err := waitDone(ctx, sink); err != nil {
		return 0, err
	}
	send, err := startProc("send", t.command(ctx, p.from, self, "_send", addr, fmt.Sprint(secs)), logBase+"-send.log", nil)
	if err != nil {
		return 0, err
	}
	select {
	case <-sink.exited:
	case <-ctx.Done():
		send.stop()
		return 0, ctx.Err()
	case <-time.After(time.Duration(secs+30) * time.Second):
		send.stop()
		return 0, fmt.Errorf("validate %s -> %s: the flow did not end", t.m.Name(p.from), t.m.Name(p.to))
	}
	send.stop()
	if rate == 0 {
		return 0, fmt.Errorf("validate %s -> %s: the sink reported no rate (see its log)", t.m.Name(p.from), t.m.Name(p.to))
	}
	return rate, nil
}
