package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/internal/shaper"
)

// TestChurnSoak keeps up to 30 peers fetching from one striped source
// (always present) while peers join, leave (cancel and close) and die
// (close while their download runs) at random. Every peer that stays until
// its download ends must have the correct file. It runs 60 s (5 s with
// -short); ROMAP2P_SOAK sets another duration, e.g. 5m.
func TestChurnSoak(t *testing.T) {
	if raceEnabled {
		t.Skip("31 nodes under the race detector do not finish on a small machine")
	}
	dur := 60 * time.Second
	if testing.Short() {
		dur = 5 * time.Second
	}
	if v := os.Getenv("ROMAP2P_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ROMAP2P_SOAK: %v", err)
		}
		dur = d
	}
	const peers = 30
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, 4<<20, 31)
	// Every pair at 4 MB/s: a download lasts a few seconds, long enough
	// for peers to come and go during it.
	nw := shaper.NewNetwork()
	shape := WithShaper(func(from, to peer.ID, w io.Writer) io.Writer {
		nw.SetPairRate(from.String(), to.String(), 4e6)
		return nw.Writer(from.String(), to.String(), w)
	})
	src := newTestNode(t, WithStripes(4), shape)
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu                            sync.Mutex
		joined, completed, left, died int
		failed                        []string
		reparents                     uint64
		live                          = map[int]peer.AddrInfo{}
		wg                            sync.WaitGroup
	)
	// known returns the source and a few live peers to start from.
	known := func(rng *rand.Rand) []peer.AddrInfo {
		mu.Lock()
		defer mu.Unlock()
		out := []peer.AddrInfo{info(src)}
		for _, ai := range live {
			if len(out) >= 4 {
				break
			}
			if rng.IntN(2) == 0 {
				out = append(out, ai)
			}
		}
		return out
	}
	deadline := time.Now().Add(dur)
	// Each slot runs one peer after another until the soak ends.
	for slot := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(slot), 77))
			for gen := 0; time.Now().Before(deadline); gen++ {
				// Stagger the joins.
				time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
				n, err := New(ctx, WithHostOptions(ListenAddrs("/ip4/127.0.0.1/tcp/0")), WithoutRouting(), WithStripes(4), shape)
				if err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("slot %d: new node: %v", slot, err))
					mu.Unlock()
					return
				}
				mu.Lock()
				joined++
				mu.Unlock()
				out := filepath.Join(dir, fmt.Sprintf("out-%d-%d", slot, gen))
				gctx, gcancel := context.WithCancel(ctx)
				errc := make(chan error, 1)
				go func() { errc <- n.Get(gctx, c, out, WithPeers(known(rng)...)) }()
				// A third of the peers leave or die during the download.
				fate := rng.IntN(6)
				var timer <-chan time.Time
				if fate < 2 {
					timer = time.After(time.Duration(rng.Int64N(int64(3 * time.Second))))
				}
				select {
				case err := <-errc:
					if p, ok := n.Progress(c); ok {
						mu.Lock()
						reparents += p.Reparents
						mu.Unlock()
					}
					switch {
					case err != nil:
						mu.Lock()
						failed = append(failed, fmt.Sprintf("slot %d gen %d: %v", slot, gen, err))
						mu.Unlock()
					case fileHash(t, out) != want:
						mu.Lock()
						failed = append(failed, fmt.Sprintf("slot %d gen %d: output differs", slot, gen))
						mu.Unlock()
					default:
						mu.Lock()
						completed++
						live[slot] = n.AddrInfo()
						mu.Unlock()
						// Stay a while as a seed for the others.
						time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Second))))
						mu.Lock()
						delete(live, slot)
						left++
						mu.Unlock()
					}
					gcancel()
					_ = n.Close()
				case <-timer:
					if fate == 0 {
						// Leave: the download is cancelled, then the node
						// closes.
						gcancel()
						<-errc
						_ = n.Close()
						mu.Lock()
						left++
						mu.Unlock()
					} else {
						// Die: the node closes under the running download.
						_ = n.Close()
						gcancel()
						if err := <-errc; err == nil && fileHash(t, out) != want {
							mu.Lock()
							failed = append(failed, fmt.Sprintf("slot %d gen %d: output differs after dying", slot, gen))
							mu.Unlock()
						} else if err != nil && !errors.Is(err, context.Canceled) {
							t.Logf("slot %d gen %d died: %v", slot, gen, err)
						}
						mu.Lock()
						died++
						mu.Unlock()
					}
					if _, err := os.Stat(out); err == nil && fileHash(t, out) != want {
						mu.Lock()
						failed = append(failed, fmt.Sprintf("slot %d gen %d: wrong file under the final name", slot, gen))
						mu.Unlock()
					}
				}
				gcancel()
			}
		}()
	}
	wg.Wait()
	t.Logf("churn soak %v with %d peer slots: %d joined, %d completed, %d left, %d died, %d reparents, %d failures",
		dur, peers, joined, completed, left, died, reparents, len(failed))
	for _, f := range failed {
		t.Error(f)
	}
	if completed == 0 {
		t.Error("no peer completed")
	}
}
