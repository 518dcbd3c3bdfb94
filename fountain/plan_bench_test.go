package fountain

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkBuildPlan measures the matrix work of decoding K symbols of
// which half are repair symbols.
func BenchmarkBuildPlan(b *testing.B) {
	for _, k := range []int{100, 1000, 4000, 10000} {
		p, _ := newCodeParams(k)
		r := rand.New(rand.NewPCG(1, 1))
		isis := seq(p.Kp)
		r.Shuffle(len(isis), func(i, j int) { isis[i], isis[j] = isis[j], isis[i] })
		isis = isis[:p.Kp/2]
		for i := 0; i < p.Kp-p.Kp/2; i++ {
			isis = append(isis, uint32(p.Kp+i))
		}
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := buildPlan(&p, isis); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
