package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// Fuzz targets of the tree code: decoders never panic, fail only with the
// documented errors, and accept exactly the honest data.

func FuzzTreeRequest(f *testing.F) {
	q := &TreeRequest{CID: testCID(f)}
	q.Blocks.Add(3)
	b, err := q.Append(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeTreeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		again, err := q.Append(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs (%v):\n%x\n%x", err, b, again)
		}
	})
}

// FuzzTreeReader reads answers to a request for the blocks named by the
// first input byte's low three bits (of a three-block file; bit 3 adds
// block 200, outside it). Every tree it accepts is the honest one, and the
// entries it accepts re-encode to the bytes it consumed.
func FuzzTreeReader(f *testing.F) {
	file, trees := treeFixture(f)
	honest := make([][]byte, len(trees))
	for i, t := range trees {
		honest[i] = t.AppendData(nil)
	}
	all := []byte{0x0f}
	for _, t := range trees {
		all = AppendTreeEntry(all, t)
	}
	f.Add(AppendTreeUnavailable(all, 200))
	f.Add(AppendTreeUnavailable(AppendTreeEntry([]byte{0x05}, trees[0]), 2))
	f.Add([]byte{0x02, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		var want BlockSet
		for i := range 3 {
			if b[0]&(1<<i) != 0 {
				want.Add(uint8(i))
			}
		}
		if b[0]&8 != 0 {
			want.Add(200)
		}
		r := bytes.NewReader(b[1:])
		tr := NewTreeReader(r, file.m, want)
		var again []byte
		for {
			sbn, tree, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTreeMismatch) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !want.Has(sbn) {
				t.Fatalf("entry for block %d, not requested", sbn)
			}
			if tree == nil {
				again = AppendTreeUnavailable(again, sbn)
				continue
			}
			if !bytes.Equal(tree.AppendData(nil), honest[sbn]) {
				t.Fatalf("block %d: accepted tree data that is not the honest one", sbn)
			}
			again = AppendTreeEntry(again, tree)
		}
		if consumed := b[1 : len(b)-r.Len()]; !bytes.Equal(again, consumed) {
			t.Fatalf("re-encoding differs:\n%x\n%x", consumed, again)
		}
	})
}

// FuzzDecodeBlockTree feeds tree data for block 1 of the fixture: only the
// honest bytes are accepted.
func FuzzDecodeBlockTree(f *testing.F) {
	file, trees := treeFixture(f)
	honest := trees[1].AppendData(nil)
	f.Add(honest)
	f.Add(honest[:32])
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := DecodeBlockTree(file.m, 1, b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTreeMismatch) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if !bytes.Equal(b, honest) || !bytes.Equal(tree.AppendData(nil), honest) {
			t.Fatalf("accepted tree data that is not the honest one:\n%x", b)
		}
	})
}

// FuzzVerifySymbol checks symbols of the fixture's last block (its last
// symbol is padded): a symbol passes only when it is the honest one. The
// input is a 2-byte ESI and the payload.
func FuzzVerifySymbol(f *testing.F) {
	file, trees := treeFixture(f)
	last := len(trees) - 1
	tree := trees[last]
	k := tree.Layout().K
	for _, esi := range []int{0, k - 1, k} {
		f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(esi)), file.symbol(last, min(esi, k-1))...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		esi := uint32(binary.BigEndian.Uint16(b))
		payload := b[2:]
		err := tree.VerifySymbol(esi, payload)
		honest := int(esi) < k && len(payload) == int(file.m.SymbolSize) && bytes.Equal(payload, file.symbol(last, int(esi)))
		switch {
		case honest && err != nil:
			t.Fatalf("honest symbol %d rejected: %v", esi, err)
		case !honest && err == nil:
			t.Fatalf("wrong symbol %d accepted", esi)
		case int(esi) >= k && !errors.Is(err, ErrRepairSymbol):
			t.Fatalf("ESI %d >= K: %v", esi, err)
		case !honest && int(esi) < k && len(payload) == int(file.m.SymbolSize) && !errors.Is(err, ErrSymbolMismatch):
			t.Fatalf("wrong symbol %d: %v", esi, err)
		}
	})
}
