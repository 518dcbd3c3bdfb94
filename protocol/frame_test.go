package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestSymbolHeader(t *testing.T) {
	var h [SymbolHeaderLen]byte
	PutSymbolHeader(h[:], 0xab, 0x123456)
	if !bytes.Equal(h[:], []byte{0, 0xab, 0x12, 0x34, 0x56}) {
		t.Fatalf("header %x", h)
	}
	sbn, esi, err := ParseSymbolHeader(h[:])
	if err != nil || sbn != 0xab || esi != 0x123456 {
		t.Fatalf("parse = %d, %d, %v", sbn, esi, err)
	}
	if _, _, err := ParseSymbolHeader(h[:4]); err == nil {
		t.Fatal("short header accepted")
	}
	h[0] = FramePath
	if _, _, err := ParseSymbolHeader(h[:]); err == nil {
		t.Fatal("non-symbol accepted")
	}
}

func TestFrameStream(t *testing.T) {
	const T = 64
	path := testPath(t, 5)
	var fin BlockSet
	fin.Add(3)
	fin.Add(250)
	sym := func(i byte) []byte { return bytes.Repeat([]byte{i}, T) }

	var s []byte
	s = AppendSymbolFrame(s, 0, 0, sym(1))
	s, err := AppendPathFrame(s, path)
	if err != nil {
		t.Fatal(err)
	}
	s = AppendSymbolFrame(s, 255, MaxESI, sym(2))
	s = append(s, 0x85, 3, 'x', 'y', 'z') // skippable extension
	s = AppendWidthFrame(s, WidthUnbounded)
	s = append(s, 0xff, 0) // empty skippable extension
	s = AppendFinishedFrame(s, fin)
	credits := []Credit{{SBN: 0, Base: 0, Allow: 1024}, {SBN: 200, Base: 1 << 30, Allow: MaxCreditAllow}}
	if s, err = AppendCreditFrame(s, credits); err != nil {
		t.Fatal(err)
	}
	s = AppendGoodbyeFrame(s, GoodbyeSwitch, "found a wider parent")
	s = AppendSymbolFrame(s, 7, 42, sym(3))

	fr := NewFrameReader(bytes.NewReader(s), T)
	next := func(typ byte) Frame {
		t.Helper()
		f, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != typ {
			t.Fatalf("frame type %#x, want %#x", f.Type, typ)
		}
		return f
	}
	f := next(FrameSymbol)
	if f.SBN != 0 || f.ESI != 0 || !bytes.Equal(f.Payload, sym(1)) {
		t.Fatalf("symbol %+v", f)
	}
	f = next(FramePath)
	if p, err := f.Path(); err != nil || !reflect.DeepEqual(p, path) {
		t.Fatalf("path %v, %v", p, err)
	}
	if _, err := f.Width(); err == nil {
		t.Fatal("path frame decoded as width")
	}
	f = next(FrameSymbol)
	if f.SBN != 255 || f.ESI != MaxESI || !bytes.Equal(f.Payload, sym(2)) {
		t.Fatalf("symbol %+v", f)
	}
	f = next(FrameWidth)
	if w, err := f.Width(); err != nil || w != WidthUnbounded {
		t.Fatalf("width %d, %v", w, err)
	}
	f = next(FrameFinished)
	if got, err := f.Finished(); err != nil || got != fin {
		t.Fatalf("finished %x, %v", got, err)
	}
	f = next(FrameCredit)
	if got, err := f.Credits(nil); err != nil || !reflect.DeepEqual(got, credits) {
		t.Fatalf("credits %v, %v", got, err)
	}
	f = next(FrameGoodbye)
	if g, err := f.Goodbye(); err != nil || g != (Goodbye{GoodbyeSwitch, "found a wider parent"}) {
		t.Fatalf("goodbye %+v, %v", g, err)
	}
	buf := make([]byte, T)
	f, err = fr.NextInto(buf)
	if err != nil || f.SBN != 7 || f.ESI != 42 || &f.Payload[0] != &buf[0] || !bytes.Equal(buf, sym(3)) {
		t.Fatalf("NextInto: %+v, %v", f, err)
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

func TestFrameReaderRejects(t *testing.T) {
	const T = 32
	path, err := AppendPathFrame(nil, testPath(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	sym := AppendSymbolFrame(nil, 1, 2, make([]byte, T))
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"unknown type":        {[]byte{0x05, 0}, ErrMalformed},
		"unknown type 0x7f":   {[]byte{0x7f, 0}, ErrMalformed},
		"control too long":    {appendControlHeader(nil, FramePath, MaxControlFrame+1), ErrMalformed},
		"skippable too long":  {appendControlHeader(nil, 0x90, MaxControlFrame+1), ErrMalformed},
		"bad length varint":   {[]byte{FramePath, 0x80, 0}, ErrMalformed},
		"truncated symbol":    {sym[:len(sym)-1], io.ErrUnexpectedEOF},
		"truncated header":    {sym[:3], io.ErrUnexpectedEOF},
		"truncated control":   {path[:len(path)-1], io.ErrUnexpectedEOF},
		"truncated skippable": {[]byte{0x80, 5, 1}, io.ErrUnexpectedEOF},
		"missing length":      {[]byte{FrameWidth}, io.ErrUnexpectedEOF},
	}
	for name, c := range cases {
		_, err := NewFrameReader(bytes.NewReader(c.in), T).Next()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := NewFrameReader(bytes.NewReader(sym), 0).Next(); !errors.Is(err, ErrMalformed) {
		t.Errorf("symbol on a control-only stream: %v", err)
	}
	if _, err := NewFrameReader(bytes.NewReader(sym), T).NextInto(make([]byte, T-1)); err == nil {
		t.Error("short buffer accepted")
	}
}

func TestControlPayloadRejects(t *testing.T) {
	cases := map[string]Frame{
		"path trailing":     {Type: FramePath, Payload: []byte{0, 0}},
		"path too long":     {Type: FramePath, Payload: []byte{MaxPathLen + 1}},
		"path bad peer":     {Type: FramePath, Payload: []byte{1, 1, 0}},
		"width empty":       {Type: FrameWidth},
		"width trailing":    {Type: FrameWidth, Payload: []byte{1, 1}},
		"width non-minimal": {Type: FrameWidth, Payload: []byte{0x81, 0}},
		"goodbye empty":     {Type: FrameGoodbye},
		"goodbye too long":  {Type: FrameGoodbye, Payload: make([]byte, 2+MaxReasonLen)},
		"finished short":    {Type: FrameFinished, Payload: make([]byte, 31)},
		"finished long":     {Type: FrameFinished, Payload: make([]byte, 33)},
		"credit truncated":  {Type: FrameCredit, Payload: []byte{2, 1, 5, 5}},
		"credit trailing":   {Type: FrameCredit, Payload: []byte{1, 1, 5, 5, 0}},
		"credit count":      {Type: FrameCredit, Payload: []byte{0x81, 0x02}},
		"credit allow":      {Type: FrameCredit, Payload: []byte{1, 1, 0, 0x81, 0x80, 0x80, 0x08}},
	}
	for name, f := range cases {
		var err error
		switch f.Type {
		case FramePath:
			_, err = f.Path()
		case FrameWidth:
			_, err = f.Width()
		case FrameGoodbye:
			_, err = f.Goodbye()
		case FrameFinished:
			_, err = f.Finished()
		case FrameCredit:
			var got []Credit
			got, err = f.Credits([]Credit{{SBN: 9}})
			if len(got) != 1 {
				t.Errorf("%s: %d entries kept after an error, want the 1 given", name, len(got))
			}
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
	if _, err := AppendPathFrame(nil, testPath(t, MaxPathLen+1)); err == nil {
		t.Error("path over MaxPathLen encoded")
	}
	if _, err := AppendPathFrame(nil, []peer.ID{"bogus"}); err == nil {
		t.Error("invalid peer ID encoded")
	}
	// The longest path fits a control frame.
	b, err := AppendPathFrame(nil, testPath(t, MaxPathLen))
	if err != nil || len(b) > MaxControlFrame {
		t.Fatalf("longest path frame: %d bytes, %v", len(b), err)
	}
	// Goodbye text is cut and cleaned.
	f := mustOneFrame(t, AppendGoodbyeFrame(nil, GoodbyeShutdown, strings.Repeat("ü", MaxReasonLen)+"\xff"))
	g, err := f.Goodbye()
	if err != nil || len(g.Text) != MaxReasonLen || g.Code != GoodbyeShutdown {
		t.Fatalf("goodbye %d bytes, %v", len(g.Text), err)
	}
}

func mustOneFrame(t *testing.T, b []byte) Frame {
	t.Helper()
	f, err := NewFrameReader(bytes.NewReader(b), 16).Next()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFrameReaderZeroAlloc(t *testing.T) {
	const T = 1024
	var s []byte
	for i := range 64 {
		s = AppendSymbolFrame(s, uint8(i), uint32(i), make([]byte, T))
		if i%8 == 0 {
			s = AppendWidthFrame(s, uint64(i))
		}
	}
	r := bytes.NewReader(s)
	br := bufio.NewReaderSize(r, 64<<10)
	fr := NewFrameReader(br, T)
	run := func() {
		r.Reset(s)
		br.Reset(r)
		for {
			if _, err := fr.Next(); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return
			}
		}
	}
	run() // grows the control buffer once
	if n := testing.AllocsPerRun(20, run); n != 0 {
		t.Fatalf("%v allocations per stream of 64 symbols, want 0", n)
	}
}

// TestFrameReaderSmallBuffer reads symbols larger than the reader's buffer:
// they cannot be handed out in place and are copied instead.
func TestFrameReaderSmallBuffer(t *testing.T) {
	const T = 100
	var s []byte
	for esi := uint32(0); esi < 3; esi++ {
		s = AppendSymbolFrame(s, 1, esi, bytes.Repeat([]byte{byte(esi + 1)}, T))
	}
	fr := NewFrameReader(bufio.NewReaderSize(bytes.NewReader(s), 16), T)
	for esi := uint32(0); esi < 3; esi++ {
		f, err := fr.Next()
		if err != nil || f.ESI != esi || !bytes.Equal(f.Payload, bytes.Repeat([]byte{byte(esi + 1)}, T)) {
			t.Fatalf("frame %d: %+v, %v", esi, f, err)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	// A frame cut short is an unexpected end, in place or not.
	for _, size := range []int{16, 4096} {
		fr := NewFrameReader(bufio.NewReaderSize(bytes.NewReader(s[:len(s)-1]), size), T)
		var err error
		for err == nil {
			_, err = fr.Next()
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("buffer %d: truncated frame gave %v", size, err)
		}
	}
}

func TestHeldFrame(t *testing.T) {
	for _, h := range []Held{
		{SBN: 7, N: 0, Bits: []byte{}},
		{SBN: 0, N: 9, Bits: []byte{0x81, 0x01}},
		{SBN: 255, N: MaxSourceSymbols, Bits: make([]byte, (MaxSourceSymbols+7)/8)},
	} {
		b, err := AppendHeldFrame(nil, h)
		if err != nil {
			t.Fatal(err)
		}
		fm, err := NewFrameReader(bytes.NewReader(b), 16).Next()
		if err != nil {
			t.Fatal(err)
		}
		got, err := fm.Held()
		if err != nil {
			t.Fatal(err)
		}
		if got.SBN != h.SBN || got.N != h.N || !bytes.Equal(got.Bits, h.Bits) {
			t.Fatalf("round trip of %d bits: got %+v", h.N, got)
		}
	}
	h := Held{N: 9, Bits: []byte{0x81, 0x01}}
	for j, want := range []bool{true, false, false, false, false, false, false, true, true, false} {
		if h.Has(j) != want {
			t.Errorf("Has(%d) = %v", j, !want)
		}
	}
	// Bits past N do not count.
	for _, c := range []struct {
		h    Held
		want int
	}{{h, 3}, {Held{N: 9, Bits: []byte{0xff, 0xff}}, 9}, {Held{N: 16, Bits: []byte{0xff, 0x0f}}, 12}, {Held{}, 0}} {
		if got := c.h.Count(); got != c.want {
			t.Errorf("Count of %d bits %x = %d, want %d", c.h.N, c.h.Bits, got, c.want)
		}
	}
	for name, p := range map[string][]byte{
		"too many bits": {0, 0xd4, 0xb8, 0x03}, // 56404
		"short bitmap":  {0, 9, 0xff},
		"long bitmap":   {0, 8, 0xff, 0},
		"no sbn":        {},
	} {
		fm := Frame{Type: FrameHeld, Payload: p}
		if _, err := fm.Held(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want malformed", name, err)
		}
	}
	if _, err := AppendHeldFrame(nil, Held{N: 9, Bits: []byte{1}}); err == nil {
		t.Error("encoded a held frame whose bitmap is too short")
	}
}

func TestRedirectFrame(t *testing.T) {
	id, err := peer.Decode("12D3KooWQYrFZovUHvwN5DcPm8VFyYyeV2XjDcRvuvHRrECMsJmi")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ma.NewMultiaddr("/ip4/198.18.0.7/tcp/4101")
	if err != nil {
		t.Fatal(err)
	}
	want := []peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{a}}, {ID: id}}
	b, err := AppendRedirectFrame(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	fm, err := NewFrameReader(bytes.NewReader(b), 16).Next()
	if err != nil {
		t.Fatal(err)
	}
	got, err := fm.Redirect()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != id || len(got[0].Addrs) != 1 || !got[0].Addrs[0].Equal(a) || len(got[1].Addrs) != 0 {
		t.Fatalf("round trip: got %v", got)
	}
	if _, err := AppendRedirectFrame(nil, make([]peer.AddrInfo, MaxPeers+1)); err == nil {
		t.Error("encoded more peers than a redirect frame may carry")
	}
	for name, p := range map[string][]byte{
		"empty":     {},
		"count":     {0xff, 0x01},
		"truncated": {1, 3, 0},
		"trailing":  {0, 0},
	} {
		fm := Frame{Type: FrameRedirect, Payload: p}
		if _, err := fm.Redirect(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want malformed", name, err)
		}
	}
}
