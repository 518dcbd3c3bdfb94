package fountain

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzBlockDecoder feeds a decoder random ESIs, genuine, truncated,
// oversized and garbage symbols, decoding along the way. It must never
// panic, and when every symbol it accepted was genuine, a successful decode
// must return the source bytes.
func FuzzBlockDecoder(f *testing.F) {
	f.Add([]byte{9, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 30, 5})
	f.Add([]byte{60, 3, 0, 0, 0, 250, 1, 2, 3, 210, 0xff, 0xff, 0xff, 0x10})
	f.Add(bytes.Repeat([]byte{7, 0, 0, 1}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		K := 1 + int(data[0])%60
		T := 4 * (1 + int(data[1])%4)
		size := K*T - int(data[1])%T
		o, err := NewOTI(int64(size), T, WithMaxBlockSymbols(K))
		if err != nil {
			t.Fatal(err)
		}
		src := xorshiftData(K, T)[:size]
		enc, err := NewBlockEncoder(o, 0, src)
		if err != nil {
			t.Fatal(err)
		}
		dec := NewBlockDecoder(o, 0)
		consistent := true
		sym := make([]byte, T+8)
		out := make([]byte, size)
		rec := data[2:]
		for i := 0; i+4 <= len(rec); i += 4 {
			esi := uint32(rec[i])<<16 | uint32(rec[i+1])<<8 | uint32(rec[i+2])
			mode := rec[i+3]
			if esi > 2000 && mode&1 == 0 {
				esi %= 2000 // keep most ESIs near the block
			}
			if mode >= 250 {
				esi |= 1 << 24
			}
			enc.Symbol(esi&MaxESI, sym[:T])
			n := T
			switch {
			case mode >= 230 && mode < 240:
				n = int(mode) % T // truncated
			case mode >= 240 && mode < 245:
				n = T + 1 + int(mode)%7 // too long
			case mode >= 245 && mode < 250:
				for j := range sym[:T] {
					sym[j] ^= mode + byte(j)
				}
			}
			_, err := dec.Add(esi, sym[:n])
			if err == nil && mode >= 245 && mode < 250 {
				consistent = false
			}
			if (n != T || esi > MaxESI) && err == nil {
				t.Fatalf("Add accepted esi %d with %d bytes", esi, n)
			}
			if mode%16 == 3 || i+8 > len(rec) {
				err := dec.Decode(out)
				if err != nil && !errors.Is(err, ErrNeedMore) {
					t.Fatalf("decode: %v", err)
				}
				if err == nil && consistent && !bytes.Equal(out, src) {
					t.Fatal("decoded wrong bytes from genuine symbols")
				}
			}
		}
	})
}
