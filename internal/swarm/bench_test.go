package swarm

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/romap2p/romap2p/node"
	"github.com/romap2p/romap2p/treebuild"
)

// BenchmarkTableI replays the paper's Table I (100 Mbit/s access links,
// source UW) with a 16 MiB file and reports how close the receivers come
// to their widest-path widths: min and mean of goodput/width, the time the
// whole swarm took against the single-tree ideal and the lower bound. The
// back-pressure variant is the store-and-forward baseline on the same code.
func BenchmarkTableI(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []node.Option
	}{
		{"roma", nil},
		{"backpressure", []node.Option{node.WithBackPressure()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m, err := TableI()
			if err != nil {
				b.Fatal(err)
			}
			cfg := Config{
				Matrix:      m,
				Source:      TableISource,
				Size:        16 << 20,
				Uplink:      treebuild.FromMbit(100),
				Downlink:    treebuild.FromMbit(100),
				NodeOptions: bc.opts,
				Dir:         b.TempDir(),
			}
			var last *Result
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				res, err := Run(ctx, cfg)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range res.Peers {
					if !p.OK {
						b.Fatalf("%s: %s", p.Name, p.Err)
					}
				}
				last = res
			}
			minRatio, sum, tree := math.Inf(1), 0.0, 0.0
			for _, p := range last.Peers {
				r := p.GoodputBps / p.WidthBps
				minRatio = math.Min(minRatio, r)
				sum += r
				tree = math.Max(tree, p.JoinS+8*float64(last.Size)/p.WidthBps)
			}
			b.ReportMetric(minRatio, "min-goodput/width")
			b.ReportMetric(sum/float64(len(last.Peers)), "mean-goodput/width")
			b.ReportMetric(last.TotalS, "total-s")
			b.ReportMetric(tree, "tree-s")
			b.ReportMetric(last.BoundS, "bound-s")
		})
	}
}
