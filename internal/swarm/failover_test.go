package swarm

import (
	"context"
	"testing"
	"time"
)

// BenchmarkFailover runs Table I (no access caps), waits until the tree has
// formed, kills the relay with the most children and measures how long each
// orphan goes without new symbols; every surviving peer must complete with
// a verified file. It reports the worst orphan's gap.
func BenchmarkFailover(b *testing.B) {
	m, err := TableI()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		s, err := Start(ctx, Config{Matrix: m, Source: TableISource, Size: 96 << 20, Seed: uint64(i + 1)})
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(12 * time.Second)
		snap := s.Snapshot()
		kids := map[string][]string{}
		for _, p := range snap.Peers {
			if !p.Done && p.Parent != "" && p.Parent != TableISource {
				kids[p.Parent] = append(kids[p.Parent], p.Name)
			}
		}
		victim := ""
		for r, k := range kids {
			if victim == "" || len(k) > len(kids[victim]) {
				victim = r
			}
		}
		if victim == "" {
			b.Log("no relay with children at kill time; nothing to measure")
			s.Close()
			cancel()
			continue
		}
		orphans := kids[victim]
		before := map[string]float64{}
		for _, p := range snap.Peers {
			before[p.Name] = p.Progress
		}
		if err := s.Kill(victim); err != nil {
			b.Fatal(err)
		}
		killed := time.Now()
		gap := map[string]time.Duration{}
		for len(gap) < len(orphans) && time.Since(killed) < 30*time.Second {
			time.Sleep(50 * time.Millisecond)
			cur := s.Snapshot()
			for _, p := range cur.Peers {
				for _, o := range orphans {
					if p.Name == o && gap[o] == 0 && (p.Progress > before[o]+0.002 || p.Done) {
						gap[o] = time.Since(killed)
					}
				}
			}
			for _, p := range cur.Peers {
				before[p.Name] = max(before[p.Name], 0)
			}
		}
		res, err := s.Wait()
		s.Close()
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		worst := time.Duration(0)
		for _, o := range orphans {
			worst = max(worst, gap[o])
			b.Logf("killed %s; orphan %s receiving again after %v", victim, o, gap[o].Round(10*time.Millisecond))
		}
		for _, p := range res.Peers {
			if p.Name != victim && !p.OK {
				b.Errorf("%s did not complete correctly: %+v", p.Name, p)
			}
		}
		b.ReportMetric(worst.Seconds(), "worst-gap-s")
	}
}
