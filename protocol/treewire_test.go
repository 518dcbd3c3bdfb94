package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// treeFixture is a small BLAKE3 file of three blocks of T = 1 KiB with the
// trees of its blocks.
func treeFixture(tb testing.TB) (*treeFile, []*BlockTree) {
	tb.Helper()
	f := newTreeFile(tb, rand.New(rand.NewPCG(11, 12)), 14*1024+300, 1024, 3, 1)
	trees := make([]*BlockTree, len(f.blocks))
	for sbn, b := range f.blocks {
		t, err := ComputeBlockTree(f.m, uint8(sbn), b)
		if err != nil {
			tb.Fatal(err)
		}
		trees[sbn] = t
	}
	return f, trees
}

func TestTreeRequestRoundTrip(t *testing.T) {
	q := &TreeRequest{CID: testCID(t)}
	if _, err := q.Append(nil); err == nil {
		t.Fatal("request for no blocks encoded")
	}
	q.Blocks.Add(0)
	q.Blocks.Add(7)
	q.Blocks.Add(255)
	var buf bytes.Buffer
	if err := WriteTreeRequest(&buf, q); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("next")
	got, err := ReadTreeRequest(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CID.Equals(q.CID) || got.Blocks != q.Blocks {
		t.Fatalf("got %+v, want %+v", got, q)
	}
	if buf.String() != "next" {
		t.Fatalf("request read past its end: %q left", buf.String())
	}
	body, err := q.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(body)+1 > maxTreeRequest {
		t.Fatalf("request of %d bytes exceeds its own limit %d", len(body), maxTreeRequest)
	}
	for name, b := range map[string][]byte{
		"no blocks": append(bytes.Clone(body[:len(body)-32]), make([]byte, 32)...),
		"trailing":  append(bytes.Clone(body), 0),
		"truncated": body[:len(body)-1],
		"empty":     nil,
	} {
		if _, err := DecodeTreeRequest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	long := binary.AppendUvarint(nil, uint64(maxTreeRequest+1))
	if _, err := ReadTreeRequest(bytes.NewReader(append(long, make([]byte, maxTreeRequest+1)...))); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized request: %v, want ErrMalformed", err)
	}
}

func TestTreeReader(t *testing.T) {
	f, trees := treeFixture(t)
	var want BlockSet
	want.Add(0)
	want.Add(2)
	want.Add(9) // outside the manifest: the server must say it has none
	var resp []byte
	resp = AppendTreeEntry(resp, trees[0])
	resp = AppendTreeUnavailable(resp, 2)
	resp = AppendTreeUnavailable(resp, 9)
	resp = append(resp, "next"...)
	r := bytes.NewReader(resp)
	tr := NewTreeReader(r, f.m, want)
	sbn, tree, err := tr.Next()
	if err != nil || sbn != 0 || tree == nil || !bytes.Equal(tree.AppendData(nil), trees[0].AppendData(nil)) {
		t.Fatalf("entry 0: %d, %v, %v", sbn, tree, err)
	}
	if err := tree.VerifySymbol(1, f.symbol(0, 1)); err != nil {
		t.Fatalf("tree read from the wire: %v", err)
	}
	for _, w := range []uint8{2, 9} {
		if sbn, tree, err = tr.Next(); err != nil || sbn != w || tree != nil {
			t.Fatalf("entry %d: %d, %v, %v", w, sbn, tree, err)
		}
	}
	if _, _, err := tr.Next(); err != io.EOF {
		t.Fatalf("after the last entry: %v", err)
	}
	if r.Len() != 4 {
		t.Fatalf("reader read past the answer: %d bytes left", r.Len())
	}
}

// TestTreeReaderRejects feeds broken answers to a request for block 1.
func TestTreeReaderRejects(t *testing.T) {
	f, trees := treeFixture(t)
	var want BlockSet
	want.Add(1)
	good := AppendTreeEntry(nil, trees[1])
	data := trees[1].AppendData(nil)
	hdr := func(sbn, status byte, n uint64) []byte {
		return binary.AppendUvarint([]byte{sbn, status}, n)
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"other block", AppendTreeEntry(nil, trees[0]), ErrMalformed},
		{"unknown status", []byte{1, 2}, ErrMalformed},
		{"short length", append(hdr(1, 0, uint64(len(data)-32)), data[32:]...), ErrMalformed},
		{"long length", append(hdr(1, 0, uint64(len(data)+32)), append(data, make([]byte, 32)...)...), ErrMalformed},
		{"huge length", hdr(1, 0, 1<<62), ErrMalformed},
		{"non-minimal length", append([]byte{1, 0, 0x80 | byte(len(data)&0x7f), byte(len(data)>>7) | 0x80, 0}, data...), ErrMalformed},
		{"tampered", tampered, ErrTreeMismatch},
		{"empty", nil, io.ErrUnexpectedEOF},
		{"header only", []byte{1}, io.ErrUnexpectedEOF},
		{"truncated", good[:len(good)-1], io.ErrUnexpectedEOF},
	} {
		_, tree, err := NewTreeReader(bytes.NewReader(c.in), f.m, want).Next()
		if !errors.Is(err, c.want) || tree != nil {
			t.Errorf("%s: %v, %v; want %v", c.name, tree, err, c.want)
		}
	}
	// Tree data for a block outside the manifest, or for content whose
	// symbols have no trees, is malformed.
	want.Add(3)
	in := append(AppendTreeUnavailable(nil, 1), hdr(3, 0, 0)...)
	tr := NewTreeReader(bytes.NewReader(in), f.m, want)
	if _, _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.Next(); !errors.Is(err, ErrMalformed) {
		t.Errorf("tree of block 3 of 3: %v", err)
	}
	sha := *f.m
	sha.BlockHash = 0
	want.Remove(3)
	if _, _, err := NewTreeReader(bytes.NewReader(good), &sha, want).Next(); !errors.Is(err, ErrMalformed) {
		t.Errorf("tree data for a sha2-256 manifest: %v", err)
	}
}
