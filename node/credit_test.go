package node

import (
	"slices"
	"testing"
)

func TestSplitNeed(t *testing.T) {
	cases := []struct {
		need int
		w    []float64
		want []int
	}{
		{100, []float64{1}, []int{100}},
		{100, []float64{1, 1, 2}, []int{25, 25, 50}},
		{10, []float64{1, 1, 1}, []int{4, 3, 3}},
		{1, []float64{1, 5, 1}, []int{0, 1, 0}},
		{7, []float64{0, 0}, []int{4, 3}},
		{5, []float64{-1, 1}, []int{0, 5}},
		{0, []float64{3, 1}, []int{0, 0}},
	}
	for _, c := range cases {
		got := splitNeed(c.need, c.w, nil)
		if !slices.Equal(got, c.want) {
			t.Errorf("splitNeed(%d, %v) = %v, want %v", c.need, c.w, got, c.want)
		}
	}
	// Whatever the weights, the shares add up to the need.
	w := []float64{0.3, 7, 1e-9, 2.5, 11}
	for need := 0; need < 300; need++ {
		sum := 0
		for _, n := range splitNeed(need, w, nil) {
			if n < 0 {
				t.Fatalf("negative share for need %d", need)
			}
			sum += n
		}
		if sum != need {
			t.Fatalf("need %d split into %d", need, sum)
		}
	}
}
