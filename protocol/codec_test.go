package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
)

func TestParseUvarint(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 1 << 32, math.MaxUint64} {
		b := binary.AppendUvarint(nil, v)
		got, n, err := parseUvarint(append(b, 0xee))
		if err != nil || got != v || n != len(b) {
			t.Errorf("parseUvarint(%x) = %d, %d, %v; want %d, %d", b, got, n, err, v, len(b))
		}
		r, err := readUvarint(bytes.NewReader(append(b, 0xee)))
		if err != nil || r != v {
			t.Errorf("readUvarint(%x) = %d, %v", b, r, err)
		}
	}
	bad := [][]byte{
		{},                             // empty
		{0x80},                         // truncated
		{0x80, 0x00},                   // non-minimal zero
		{0xff, 0x00},                   // non-minimal
		bytes.Repeat([]byte{0xff}, 10), // too long
		append(bytes.Repeat([]byte{0xff}, 9), 0x02), // overflow
	}
	for _, b := range bad {
		if _, _, err := parseUvarint(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("parseUvarint(%x): err = %v, want malformed", b, err)
		}
	}
	if _, err := readUvarint(bytes.NewReader(nil)); err != io.EOF {
		t.Errorf("readUvarint(empty) = %v, want io.EOF", err)
	}
	if _, err := readUvarint(bytes.NewReader([]byte{0x80})); err != io.ErrUnexpectedEOF {
		t.Errorf("readUvarint(truncated) = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := readUvarint(bytes.NewReader([]byte{0x80, 0})); !errors.Is(err, ErrMalformed) {
		t.Errorf("readUvarint(non-minimal) = %v, want malformed", err)
	}
}

// countingReader fails the test if more than limit bytes are requested in
// total, showing a length is checked before the body is read.
type countingReader struct {
	r    io.Reader
	read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func TestReadMessageBoundsBeforeReading(t *testing.T) {
	huge := binary.AppendUvarint(nil, 1<<40)
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(huge), zeroReader{})}
	if _, err := readMessage(cr, MaxMessageSize); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want malformed", err)
	}
	if cr.read != len(huge) {
		t.Fatalf("read %d bytes, want only the %d-byte length", cr.read, len(huge))
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestReadMessageDoesNotOverRead(t *testing.T) {
	var buf bytes.Buffer
	if err := writeMessage(&buf, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("rest")
	// onlyReader hides bytes.Buffer's ReadByte, like a plain stream.
	r := struct{ io.Reader }{&buf}
	b, err := readMessage(r, 16)
	if err != nil || string(b) != "hello" {
		t.Fatalf("readMessage = %q, %v", b, err)
	}
	if buf.String() != "rest" {
		t.Fatalf("left %q, want %q", buf.String(), "rest")
	}
	if _, err := readMessage(bytes.NewReader([]byte{5, 'a'}), 16); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated body: %v", err)
	}
}

func TestBlockSet(t *testing.T) {
	var s BlockSet
	for _, b := range []uint8{0, 7, 8, 200, 255} {
		s.Add(b)
	}
	if s.Count() != 5 || !s.Has(255) || !s.Has(8) || s.Has(9) {
		t.Fatalf("set %x", s)
	}
	if s[0] != 0x81 || s[1] != 0x01 || s[31] != 0x80 {
		t.Fatalf("bit layout %x", s)
	}
	s.Remove(8)
	if s.Has(8) || s.Count() != 4 {
		t.Fatal("remove")
	}
	var all BlockSet
	for i := range 10 {
		all.Add(uint8(i))
	}
	if !all.HasAll(10) || all.HasAll(11) {
		t.Fatal("HasAll")
	}
}
