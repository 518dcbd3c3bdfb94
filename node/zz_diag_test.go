package node

import (
	"fmt"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDiagChainTimeline(t *testing.T) {
	if os.Getenv("DIAGCHAIN") == "" {
		t.Skip()
	}
	size := int64(128 << 20)
	dir := t.TempDir()
	path, _ := writeRandomFile(t, dir, size, 7)
	for round := 0; round < 3; round++ {
		var opts []Option
		if os.Getenv("RING16") != "" {
			opts = append(opts, WithRingBytes(16<<20))
		}
		if os.Getenv("BP") != "" {
			opts = append(opts, WithBackPressure())
		}
		if os.Getenv("SPILLBIG") != "" {
			opts = append(opts, WithSpillMemory(256<<20))
		}
		src, a, z := newTestNode(t, opts...), newTestNode(t, opts...), newTestNode(t, opts...)
		ctx := context.Background()
		c, err := src.Add(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		stop := make(chan struct{})
		go func() {
			tk := time.NewTicker(10 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
				}
				pa, _ := a.Progress(c)
				pz, _ := z.Progress(c)
				if os.Getenv("BLOCKS") != "" && time.Since(t0) > 300*time.Millisecond {
					if zs := z.session(c); zs != nil && zs.fetch != nil && zs.fetch.spill != nil {
						line := ""
						for b := 0; b < 32; b++ {
							line += fmt.Sprintf(" %d:%d/%d", b, zs.fetch.spill.count(b), zs.fetch.spill.sourceCount(b))
						}
						t.Logf("B blocks%s", line)
					}
				}
				ps, _ := src.Progress(c)
				for _, l := range ps.Children {
					if os.Getenv("QUIET") != "" {
						break
					}
					t.Logf("   S child: sent %d skipped %d", l.Symbols, l.Skipped)
				}
				if os.Getenv("QUIET") == "" { t.Logf("%4d ms A in %6.1f MiB done %6.1f | B in %6.1f MiB done %6.1f", time.Since(t0).Milliseconds(),
					float64(pa.SymbolsIn*4096)/(1<<20), float64(pa.BytesDone)/(1<<20), float64(pz.SymbolsIn*4096)/(1<<20), float64(pz.BytesDone)/(1<<20)) }
			}
		}()
		errc := make(chan error, 1)
		go func() { errc <- a.Get(ctx, c, filepath.Join(dir, "a.out"), WithParents(info(src))) }()
		if err := z.Get(ctx, c, filepath.Join(dir, "b.out"), WithParents(info(a))); err != nil {
			t.Fatal(err)
		}
		<-errc
		close(stop)
		t.Logf("round %d: %v", round, time.Since(t0))
		src.Close(); a.Close(); z.Close()
		os.Remove(filepath.Join(dir, "a.out")); os.Remove(filepath.Join(dir, "b.out"))
	}
}
