package relay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

// fill writes the test pattern of symbol (sbn, esi) into dst.
func fill(dst []byte, sbn uint8, esi uint32) {
	x := esi*2654435761 + uint32(sbn)*40503
	for i := range dst {
		dst[i] = byte(x >> 24)
		x = x*1664525 + 1013904223
	}
}

// checkPayload reports whether data is the pattern of (sbn, esi).
func checkPayload(data []byte, sbn uint8, esi uint32) error {
	want := make([]byte, len(data))
	fill(want, sbn, esi)
	if !bytes.Equal(data, want) {
		return fmt.Errorf("symbol (%d,%d): payload does not match its header", sbn, esi)
	}
	return nil
}

// frame is one frame parsed from a writer's output.
type frame struct {
	control bool
	typ     byte
	sbn     uint8
	esi     uint32
	payload []byte
}

// maxControlLen bounds control frame lengths read by parseFrames.
const maxControlLen = 1 << 16

// parseFrames splits a stream of symbol frames (payload t bytes) and control
// frames (type, uvarint length, payload).
func parseFrames(stream []byte, t int) ([]frame, error) {
	br := bufio.NewReader(bytes.NewReader(stream))
	var out []frame
	for {
		typ, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if typ == protocol.FrameSymbol {
			buf := make([]byte, protocol.SymbolHeaderLen+t)
			buf[0] = typ
			if _, err := io.ReadFull(br, buf[1:]); err != nil {
				return out, fmt.Errorf("truncated symbol frame: %w", err)
			}
			sbn, esi, err := protocol.ParseSymbolHeader(buf)
			if err != nil {
				return out, err
			}
			out = append(out, frame{sbn: sbn, esi: esi, payload: buf[protocol.SymbolHeaderLen:]})
			continue
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return out, fmt.Errorf("control length: %w", err)
		}
		if n > maxControlLen {
			return out, fmt.Errorf("control frame of %d bytes", n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return out, fmt.Errorf("truncated control frame: %w", err)
		}
		out = append(out, frame{control: true, typ: typ, payload: p})
	}
}

// controlFrame encodes a control frame of type typ.
func controlFrame(typ byte, payload []byte) []byte {
	b := []byte{typ}
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// recorder is an io.Writer that keeps everything written and the size of
// every Write, optionally calling a hook first.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes []int
	hook   func(p []byte) error
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.hook != nil {
		if err := w.hook(p); err != nil {
			return 0, err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, len(p))
	return w.buf.Write(p)
}

func (w *recorder) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// bucket is a token-bucket rate-limited io.Writer that discards data and
// counts it. A Write takes its whole length in tokens, waiting while the
// bucket is in debt; the bucket holds at most burst bytes of credit.
type bucket struct {
	rate  float64 // bytes per second
	burst float64

	tokens float64
	last   time.Time
	n      atomic.Uint64
}

func newBucket(rate, burst float64) *bucket {
	return &bucket{rate: rate, burst: burst, last: time.Now()}
}

func (b *bucket) Write(p []byte) (int, error) {
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(len(p))
	if b.tokens < 0 {
		time.Sleep(time.Duration(-b.tokens / b.rate * float64(time.Second)))
	}
	b.n.Add(uint64(len(p)))
	return len(p), nil
}

// counter is an io.Writer that discards data and counts it.
type counter struct{ n atomic.Uint64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n.Add(uint64(len(p)))
	return len(p), nil
}
