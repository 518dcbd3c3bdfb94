package swarm

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSettle runs Table I (no access caps) with receivers joining one
// every 2 s and watches each receiver's main parent: how long a joiner waits
// for its first parent, when the last parent change happens after the last
// join (the tree has settled), and the most changes one peer makes in any
// 30 s once settled.
func BenchmarkSettle(b *testing.B) {
	m, err := TableI()
	if err != nil {
		b.Fatal(err)
	}
	const stagger = 2 * time.Second
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		type change struct{ at time.Duration }
		first := map[string]time.Duration{}
		joined := map[string]time.Duration{}
		last := map[string]string{}
		changes := map[string][]time.Duration{}
		tick := func(s Snapshot) {
			for _, p := range s.Peers {
				if !p.Joined || p.Done {
					continue
				}
				if _, ok := joined[p.Name]; !ok {
					joined[p.Name] = s.Elapsed
				}
				if p.Parent == "" {
					continue
				}
				if _, ok := first[p.Name]; !ok {
					first[p.Name] = s.Elapsed
				}
				if last[p.Name] != "" && last[p.Name] != p.Parent {
					changes[p.Name] = append(changes[p.Name], s.Elapsed)
				}
				last[p.Name] = p.Parent
			}
		}
		res, err := Run(ctx, Config{Matrix: m, Source: TableISource, Size: 128 << 20, Stagger: stagger, Seed: 3},
			OnTick(tick), TickInterval(100*time.Millisecond))
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		lastJoin := time.Duration(len(res.Peers)-1) * stagger
		settled, worstAttach := time.Duration(0), time.Duration(0)
		for _, p := range res.Peers {
			if !p.OK {
				b.Errorf("%s did not complete correctly", p.Name)
			}
			worstAttach = max(worstAttach, first[p.Name]-joined[p.Name])
			for _, at := range changes[p.Name] {
				settled = max(settled, at-lastJoin)
			}
		}
		// Most changes by one peer within any 30 s window after settling.
		worst30 := 0
		for _, cs := range changes {
			for a := range cs {
				if cs[a] < lastJoin+settled {
					continue
				}
				n := 0
				for _, c := range cs[a:] {
					if c-cs[a] < 30*time.Second {
						n++
					}
				}
				worst30 = max(worst30, n)
			}
		}
		for _, p := range res.Peers {
			b.Logf("%s: joined %.1fs, first parent after %v, %d parent changes, goodput/width %.2f",
				p.Name, p.JoinS, (first[p.Name] - joined[p.Name]).Round(10*time.Millisecond), len(changes[p.Name]), p.GoodputBps/p.WidthBps)
		}
		b.ReportMetric(worstAttach.Seconds(), "worst-attach-s")
		b.ReportMetric(settled.Seconds(), "settled-after-last-join-s")
		b.ReportMetric(float64(worst30), "max-changes-per-30s")
	}
}
