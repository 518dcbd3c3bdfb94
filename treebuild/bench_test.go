package treebuild

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func BenchmarkWidestPathTree(b *testing.B) {
	for _, n := range []int{9, 200} {
		m := randomMatrix(b, n, 7)
		if n == 9 {
			m = loadTable1(b)
		}
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := WidestPathTree(m, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBound(b *testing.B) {
	for _, n := range []int{9, 50} {
		m := randomMatrix(b, n, 3)
		for h := range n {
			m.SetUplink(h, FromMbit(100))
			m.SetDownlink(h, FromMbit(100))
		}
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Bound(m, 0, 64<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReevaluate(b *testing.B) {
	ch, _ := NewChooser()
	now := time.Unix(1, 0)
	var cands []Candidate
	for i := range 100 {
		c := Candidate{ID: peer.ID(fmt.Sprint("p", i)), Width: float64(1000 + i*37%500), Depth: 1 + i%5,
			Path: []peer.ID{"src", peer.ID(fmt.Sprint("p", i))}, MaxChildren: 8, Children: i % 9}
		if i%2 == 0 {
			c.Measured, c.MeasuredAt, c.MeasuredWidth = c.Width*0.8, now, c.Width
		}
		cands = append(cands, c)
	}
	for b.Loop() {
		ch.Reevaluate("me", "p0", 900, cands, now, time.Time{})
		ch.NextProbe("me", "p0", 900, cands, now)
	}
}
