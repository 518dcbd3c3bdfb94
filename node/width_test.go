package node

import (
	"testing"

	"github.com/romap2p/romap2p/protocol"
)

func TestWidthMoved(t *testing.T) {
	for _, c := range []struct {
		told, now uint64
		want      bool
	}{
		{1000, 1000, false},
		{1000, 1100, false},
		{1000, 1240, false},
		{1000, 1300, true},
		{1000, 810, false},
		{1000, 790, true},
		{0, 500, true},
		{1000, protocol.WidthUnbounded, true},
		{protocol.WidthUnbounded, 1000, true},
		{protocol.WidthUnbounded, protocol.WidthUnbounded, false},
	} {
		if got := widthMoved(c.told, c.now); got != c.want {
			t.Errorf("widthMoved(%d, %d) = %v, want %v", c.told, c.now, got, c.want)
		}
	}
}
