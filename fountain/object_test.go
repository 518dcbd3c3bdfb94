package fountain

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

func TestNewOTI(t *testing.T) {
	cases := []struct {
		size int64
		T    int
		opts []PartitionOption
	}{
		{1, 1, nil},
		{1000, 16, nil},
		{64 << 20, 1024, nil},
		{64 << 20, 4096, nil},
		{1 << 30, 1024, nil},
		{1 << 30, 4096, nil},
		{10 << 30, 4096, nil},
		{5 << 20, 1024, []PartitionOption{WithMaxBlockSymbols(100)}},
		{1 << 20, 1024, []PartitionOption{WithSubBlockLimit(256 << 10)}},
		{12345, 12, []PartitionOption{WithAlignment(3)}},
	}
	for _, c := range cases {
		o, err := NewOTI(c.size, c.T, c.opts...)
		if err != nil {
			t.Fatalf("%d/%d: %v", c.size, c.T, err)
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		var total int64
		for sbn := 0; sbn < o.Blocks(); sbn++ {
			if o.BlockOffset(sbn) != total {
				t.Fatalf("%+v: block %d at %d, want %d", o, sbn, o.BlockOffset(sbn), total)
			}
			k := o.BlockSymbols(sbn)
			if k < 1 || k > MaxBlockSymbols {
				t.Fatalf("%+v: block %d has K=%d", o, sbn, k)
			}
			if sbn < o.Blocks()-1 && o.BlockLen(sbn) != int64(k)*int64(o.T) {
				t.Fatalf("%+v: inner block %d is short", o, sbn)
			}
			total += o.BlockLen(sbn)
		}
		if total != c.size || o.Blocks() > MaxSourceBlocks {
			t.Fatalf("%+v: blocks cover %d of %d bytes", o, total, c.size)
		}
	}
	o, _ := NewOTI(1<<30, 1024)
	if o.Blocks() != 256 || o.BlockSymbols(0) != 4096 {
		t.Fatalf("1 GiB: %d blocks of %d", o.Blocks(), o.BlockSymbols(0))
	}
	o, _ = NewOTI(1<<20, 1024, WithSubBlockLimit(256<<10))
	if o.N < 2 {
		t.Fatalf("sub-block limit ignored: %+v", o)
	}
	for _, bad := range []struct {
		size int64
		T    int
	}{{0, 1024}, {-1, 1024}, {1, 0}, {1, 70000}, {MaxTransferLength + 1, 4096}, {256*MaxBlockSymbols*64 + 1, 64}} {
		if _, err := NewOTI(bad.size, bad.T); err == nil {
			t.Fatalf("NewOTI(%d, %d) accepted", bad.size, bad.T)
		}
	}
	if (OTI{F: 100, T: 10, Z: 20, N: 1, Al: 1}).Validate() == nil {
		t.Fatal("more blocks than symbols accepted")
	}
}

// TestSubBlocks round-trips an object whose blocks are split into
// interleaved sub-blocks, and checks that each sub-block is the code of its
// own sub-symbols.
func TestSubBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	o, err := NewOTI(300*64+7, 64, WithSubBlockLimit(4000), WithAlignment(4))
	if err != nil {
		t.Fatal(err)
	}
	if o.N < 2 {
		t.Fatalf("want sub-blocks, got %+v", o)
	}
	size, off := o.subSymbols()
	src := randBytes(r, int(o.F))
	for sbn := 0; sbn < o.Blocks(); sbn++ {
		blk := src[o.BlockOffset(sbn) : o.BlockOffset(sbn)+o.BlockLen(sbn)]
		enc, err := NewBlockEncoder(o, sbn, blk)
		if err != nil {
			t.Fatal(err)
		}
		K := o.BlockSymbols(sbn)
		// Sub-block j on its own is the code of the j-th sub-symbols.
		for j := range size {
			so := OTI{F: uint64(K * size[j]), T: uint16(size[j]), Z: 1, N: 1, Al: o.Al}
			sub := make([]byte, K*size[j])
			for i := 0; i < K; i++ {
				lo := i*int(o.T) + off[j]
				if lo < len(blk) {
					copy(sub[i*size[j]:(i+1)*size[j]], blk[lo:min(len(blk), lo+size[j])])
				}
			}
			se, err := NewBlockEncoder(so, 0, sub)
			if err != nil {
				t.Fatal(err)
			}
			a, b := make([]byte, o.T), make([]byte, size[j])
			for _, esi := range []uint32{0, uint32(K), uint32(K + 77)} {
				enc.Symbol(esi, a)
				se.Symbol(esi, b)
				if !bytes.Equal(a[off[j]:off[j]+size[j]], b) {
					t.Fatalf("block %d sub-block %d ESI %d differs", sbn, j, esi)
				}
			}
		}
		dec := NewBlockDecoder(o, sbn)
		sym := make([]byte, o.T)
		for esi := uint32(K / 3); dec.Received() < K+1; esi++ {
			enc.Symbol(esi, sym)
			dec.Add(esi, sym)
		}
		out := make([]byte, len(blk))
		if err := dec.Decode(out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, blk) {
			t.Fatalf("block %d decoded wrong", sbn)
		}
	}
}

func TestEncoderObject(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	const T = 256
	size := int64(40*T*7 + 99)
	o, err := NewOTI(size, T, WithMaxBlockSymbols(40))
	if err != nil {
		t.Fatal(err)
	}
	src := randBytes(r, int(size))
	// A cache smaller than one block still works (one block is kept).
	enc, err := NewEncoder(bytes.NewReader(src), o, WithCacheBytes(1))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	out := make([]byte, size)
	errs := make(chan error, o.Blocks())
	for sbn := 0; sbn < o.Blocks(); sbn++ {
		wg.Add(1)
		go func(sbn int) {
			defer wg.Done()
			dec := NewBlockDecoder(o, sbn)
			K := o.BlockSymbols(sbn)
			sym := make([]byte, T)
			for esi := uint32(0); dec.Received() < K+2; esi++ {
				if esi%3 == 0 {
					continue // lose a third
				}
				if err := enc.Symbol(sbn, esi, sym); err != nil {
					errs <- err
					return
				}
				dec.Add(esi, sym)
			}
			off := o.BlockOffset(sbn)
			errs <- dec.Decode(out[off : off+o.BlockLen(sbn)])
		}(sbn)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out, src) {
		t.Fatal("object decoded wrong")
	}
	// Symbols agree with a block encoder, and restore from intermediates.
	be, _ := NewBlockEncoder(o, 2, src[o.BlockOffset(2):o.BlockOffset(2)+o.BlockLen(2)])
	re, err := NewBlockEncoderFromIntermediate(o, 2, be.Intermediate())
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := make([]byte, T), make([]byte, T), make([]byte, T)
	for esi := uint32(0); esi < 100; esi += 7 {
		enc.Symbol(2, esi, a)
		be.Symbol(esi, b)
		re.Symbol(esi, c)
		if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
			t.Fatalf("ESI %d differs between encoders", esi)
		}
	}
	if err := enc.Symbol(o.Blocks(), 0, a); err == nil {
		t.Fatal("block out of range accepted")
	}
	if _, err := NewBlockEncoderFromIntermediate(o, 2, make([]byte, 5)); err == nil {
		t.Fatal("short intermediate accepted")
	}
}

func TestDecoderAPI(t *testing.T) {
	const T = 32
	o, _ := NewOTI(50*T-3, T)
	src := randBytes(rand.New(rand.NewPCG(1, 1)), int(o.F))
	enc, _ := NewBlockEncoder(o, 0, src)
	dec := NewBlockDecoder(o, 0)
	sym := make([]byte, T)
	if _, err := dec.Add(MaxESI+1, sym); err == nil {
		t.Fatal("ESI beyond 24 bits accepted")
	}
	if _, err := dec.Add(1, sym[:T-1]); err == nil {
		t.Fatal("short symbol accepted")
	}
	out := make([]byte, o.F)
	if err := dec.Decode(out); !errors.Is(err, ErrNeedMore) {
		t.Fatalf("empty decoder: %v", err)
	}
	for esi := uint32(60); esi < 60+49; esi++ {
		enc.Symbol(esi, sym)
		if ready, _ := dec.Add(esi, sym); ready {
			t.Fatal("ready before K symbols")
		}
		dec.Add(esi, sym) // duplicate
	}
	if dec.Received() != 49 {
		t.Fatalf("received %d", dec.Received())
	}
	if err := dec.Decode(out); !errors.Is(err, ErrNeedMore) {
		t.Fatalf("K-1 symbols: %v", err)
	}
	for esi := uint32(200); ; esi++ {
		enc.Symbol(esi, sym)
		dec.Add(esi, sym)
		if err := dec.Decode(out); err == nil {
			break
		} else if !errors.Is(err, ErrNeedMore) {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out, src) {
		t.Fatal("wrong bytes")
	}
	// A second Decode gives the same bytes.
	clear(out)
	if err := dec.Decode(out); err != nil || !bytes.Equal(out, src) {
		t.Fatalf("second decode: %v", err)
	}
	if err := dec.Decode(out[:10]); err == nil {
		t.Fatal("short destination accepted")
	}
	dec.Reset()
	if dec.Received() != 0 {
		t.Fatal("reset kept symbols")
	}
	bad := NewBlockDecoder(o, 5)
	if _, err := bad.Add(0, sym); err == nil {
		t.Fatal("decoder of a missing block accepted a symbol")
	}
	// Released, a decoder refuses further use; its memory goes to the next
	// decoders, which must decode correctly whatever it holds.
	for round := range 3 {
		d := NewBlockDecoder(o, 0)
		for esi := uint32(100 * round); d.Received() < 60; esi++ {
			enc.Symbol(esi, sym)
			d.Add(esi, sym)
		}
		clear(out)
		if err := d.Decode(out); err != nil || !bytes.Equal(out, src) {
			t.Fatalf("round %d: decode after a release: %v", round, err)
		}
		d.Release()
		d.Release() // idempotent
		if _, err := d.Add(500, sym); !errors.Is(err, ErrReleased) {
			t.Fatalf("add after release: %v", err)
		}
		if err := d.Decode(out); !errors.Is(err, ErrReleased) {
			t.Fatalf("decode after release: %v", err)
		}
	}
}

func TestPortableMatchesSIMD(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	o, _ := NewOTI(700*96, 96, WithMaxBlockSymbols(700))
	src := randBytes(r, int(o.F))
	a, _ := NewBlockEncoder(o, 0, src, WithKernels(bestKernels()))
	b, _ := NewBlockEncoder(o, 0, src, WithPortableKernels())
	if !bytes.Equal(a.Intermediate(), b.Intermediate()) {
		t.Fatal("intermediate symbols differ between kernels")
	}
	dec := NewBlockDecoder(o, 0, WithPortableKernels())
	sym := make([]byte, 96)
	for esi := uint32(350); dec.Received() < 702; esi++ {
		a.Symbol(esi, sym)
		dec.Add(esi, sym)
	}
	out := make([]byte, len(src))
	if err := dec.Decode(out); err != nil || !bytes.Equal(out, src) {
		t.Fatalf("portable decode: %v", err)
	}
}

// memStore is an in-memory Store for tests.
type memStore struct {
	mu  sync.Mutex
	buf []byte
}

func (m *memStore) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.buf)) {
		m.buf = append(m.buf, make([]byte, end-int64(len(m.buf)))...)
	}
	return copy(m.buf[off:], p), nil
}

func (m *memStore) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+int64(len(p)) > int64(len(m.buf)) {
		return 0, io.ErrUnexpectedEOF
	}
	return copy(p, m.buf[off:]), nil
}

// TestEncoderStore checks that an encoder keeping intermediate symbols in a
// Store produces exactly the symbols of an in-memory block encoder, with and
// without sub-blocks, from many goroutines at once.
func TestEncoderStore(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	const T = 256
	size := int64(50*T*5 + 17)
	for _, opts := range [][]PartitionOption{
		{WithMaxBlockSymbols(50)},
		{WithMaxBlockSymbols(50), WithSubBlockLimit(50 * 64), WithAlignment(8)},
	} {
		o, err := NewOTI(size, T, opts...)
		if err != nil {
			t.Fatal(err)
		}
		src := randBytes(r, int(size))
		enc, err := NewEncoder(bytes.NewReader(src), o, WithStore(&memStore{}), WithCacheBytes(1))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for sbn := 0; sbn < o.Blocks(); sbn++ {
			be, err := NewBlockEncoder(o, sbn, src[o.BlockOffset(sbn):o.BlockOffset(sbn)+o.BlockLen(sbn)])
			if err != nil {
				t.Fatal(err)
			}
			for g := 0; g < 3; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, b := make([]byte, T), make([]byte, T)
					for esi := uint32(g); esi < 400; esi += 3 {
						if err := enc.Symbol(sbn, esi, a); err != nil {
							t.Error(err)
							return
						}
						be.Symbol(esi, b)
						if !bytes.Equal(a, b) {
							t.Errorf("N=%d block %d ESI %d: stored symbol differs", o.N, sbn, esi)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
	}
}

// TestEncoderReadAhead checks that reading source symbols ahead gives the
// same symbols as reading each on its own, in any order of requests.
func TestEncoderReadAhead(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	const T = 128
	size := int64(30*T*4 + 77)
	o, err := NewOTI(size, T, WithMaxBlockSymbols(30))
	if err != nil {
		t.Fatal(err)
	}
	src := randBytes(r, int(size))
	plain, _ := NewEncoder(bytes.NewReader(src), o)
	ahead, _ := NewEncoder(bytes.NewReader(src), o, WithReadAhead(7))
	a, b := make([]byte, T), make([]byte, T)
	for i := 0; i < 2000; i++ {
		sbn := r.IntN(o.Blocks())
		esi := uint32(r.IntN(o.BlockSymbols(sbn) + 3))
		if i%3 != 0 {
			esi = uint32(i/3) % uint32(o.BlockSymbols(sbn)) // mostly in order
		}
		if err := plain.Symbol(sbn, esi, a); err != nil {
			t.Fatal(err)
		}
		if err := ahead.Symbol(sbn, esi, b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("block %d ESI %d differs with read-ahead", sbn, esi)
		}
	}
}

// TestEncoderRelease: a released encoder refuses symbols, and encoders
// built on its memory give the same symbols as before.
func TestEncoderRelease(t *testing.T) {
	const T = 64
	o, _ := NewOTI(300*T, T)
	src := randBytes(rand.New(rand.NewPCG(2, 2)), int(o.F))
	ref, err := NewBlockEncoder(o, 0, src)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, T)
	if err := ref.Symbol(1000, want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, T)
	for round := range 4 {
		e, err := NewBlockEncoder(o, 0, src)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Symbol(1000, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: symbol differs (%v)", round, err)
		}
		e.Release()
		e.Release()
		if err := e.Symbol(1000, got); !errors.Is(err, ErrReleased) {
			t.Fatalf("round %d: symbol after release: %v", round, err)
		}
	}
}
