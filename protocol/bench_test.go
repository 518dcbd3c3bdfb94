package protocol

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// BenchmarkFrameReader reads a stream of symbol frames with a width frame
// every 64 symbols; the figure is source data per second.
func BenchmarkFrameReader(b *testing.B) {
	for _, T := range []int{1024, 4096} {
		b.Run(fmt.Sprintf("T=%d", T), func(b *testing.B) {
			var s []byte
			data := make([]byte, T)
			for i := range 1024 {
				s = AppendSymbolFrame(s, uint8(i), uint32(i), data)
				if i%64 == 0 {
					s = AppendWidthFrame(s, uint64(i))
				}
			}
			r := bytes.NewReader(s)
			fr := NewFrameReader(r, T)
			b.SetBytes(int64(1024 * T))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(s)
				fr.r.Reset(r)
				for {
					if _, err := fr.Next(); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
				}
			}
		})
	}
}

func BenchmarkAppendSymbolFrame(b *testing.B) {
	data := make([]byte, 1024)
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if len(buf)+SymbolHeaderLen+len(data) > cap(buf) {
			buf = buf[:0]
		}
		buf = AppendSymbolFrame(buf, 1, 2, data)
	}
}

func BenchmarkManifest(b *testing.B) {
	m := testManifest()
	m.Size = 1 << 33
	m.BlockHashes = make([][32]byte, MaxSourceBlocks)
	enc := mustEncode(b, m)
	c := ManifestCID(enc)
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := VerifyManifest(c, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkStatus(b *testing.B) {
	s := testStatus(b)
	enc, err := s.Append(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			if _, err := s.Append(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeStatus(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
