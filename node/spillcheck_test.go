package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestResumeChecksSpill resumes a download whose spill files hold, besides
// right symbols, a wrong source symbol, a record with an ESI beyond the
// 24-bit space, a repeated record and a torn last record: the download
// completes with the right file, the bad records are dropped and no peer
// is blamed for them.
func TestResumeChecksSpill(t *testing.T) {
	dir := t.TempDir()
	path, want := writeRandomFile(t, dir, 20<<20+777, 21)
	src := newTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := src.Add(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	sess := src.session(c)
	oti, T := sess.oti, sess.t
	if oti.Blocks() < 2 {
		t.Fatalf("want at least 2 blocks, have %d", oti.Blocks())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	symbol := func(b, esi int) []byte {
		sym := make([]byte, T)
		off := int(oti.BlockOffset(b))
		lo := off + esi*T
		end := off + int(oti.BlockLen(b))
		if lo < end {
			copy(sym, data[lo:min(lo+T, end)])
		}
		return sym
	}
	out := filepath.Join(dir, "out.bin")
	state := out + ".romap2p"
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	record := func(esi uint32, sym []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, esi), sym...)
	}
	var b0 []byte
	for esi := 0; esi < 10; esi++ {
		b0 = append(b0, record(uint32(esi), symbol(0, esi))...)
	}
	bad := symbol(0, 10)
	bad[7] ^= 1
	b0 = append(b0, record(10, bad)...)
	b0 = append(b0, record(1<<25, symbol(0, 11))...) // beyond the ESI space
	b0 = append(b0, record(3, symbol(0, 3))...)      // repeated
	b0 = append(b0, record(12, symbol(0, 12))[:100]...)
	bad1 := symbol(1, 0)
	bad1[0] ^= 0x80
	b1 := append(record(0, bad1), record(1, symbol(1, 1))...)
	for b, recs := range [][]byte{b0, b1} {
		if err := os.WriteFile(filepath.Join(state, fmt.Sprintf("block-%03d.sym", b)), recs, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recv := newTestNode(t)
	if err := recv.Get(ctx, c, out, WithPeers(info(src))); err != nil {
		t.Fatal(err)
	}
	if fileHash(t, out) != want {
		t.Fatal("output differs")
	}
	for _, n := range []*Node{src, recv} {
		if bl := n.session(c).blamed.list(); len(bl) > 0 {
			t.Errorf("%s blamed %v", n.host.ID(), bl)
		}
	}
}
