package relay

import (
	"context"
	"fmt"
	"io"
	"time"
)

// DefaultControlQueue is the default number of control frames a Writer
// queues before SendControl blocks.
const DefaultControlQueue = 16

// WriterOption configures a Writer.
type WriterOption func(*writerConfig)

type writerConfig struct {
	queue int
}

// WithControlQueue sets how many control frames may wait to be written.
func WithControlQueue(n int) WriterOption { return func(c *writerConfig) { c.queue = max(n, 1) } }

// Writer sends one consumer's symbols to one child's stream: it takes every
// symbol available on its cursor, up to the ring's batch size, and writes
// them as whole frames in one Write, straight from the ring. A blocked Write
// blocks only this writer; while it blocks, the ring moves on and the
// consumer skips what it could not take in time. Control frames queued with
// SendControl are written between batches and are never dropped.
type Writer struct {
	c       *Consumer
	w       io.Writer
	ctrl    chan []byte
	stopped chan struct{}
	scratch []byte
}

// NewWriter returns a writer that feeds c into w. Call Run to start it.
func NewWriter(c *Consumer, w io.Writer, opts ...WriterOption) *Writer {
	cfg := writerConfig{queue: DefaultControlQueue}
	for _, o := range opts {
		o(&cfg)
	}
	return &Writer{
		c:       c,
		w:       w,
		ctrl:    make(chan []byte, cfg.queue),
		stopped: make(chan struct{}),
		scratch: make([]byte, 0, c.r.per*c.r.stride),
	}
}

// Consumer returns the consumer the writer reads from, for its filter and
// counters.
func (w *Writer) Consumer() *Consumer { return w.c }

// Done is closed when Run has returned: every control frame queued before
// the consumer was closed has been written by then (unless Run failed).
func (w *Writer) Done() <-chan struct{} { return w.stopped }

// SendControl queues an encoded control frame to be written between symbol
// batches. The writer takes ownership of frame. It blocks while the queue is
// full, and fails once the writer has stopped or ctx ends. Frames queued
// before the consumer is closed are still written; frames queued when Run
// fails or its context ends are discarded.
func (w *Writer) SendControl(ctx context.Context, frame []byte) error {
	select {
	case <-w.stopped:
		return ErrClosed
	default:
	}
	select {
	case w.ctrl <- frame:
		return nil
	case <-w.stopped:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run writes until ctx ends (returning its error), the consumer is closed or
// the ring is closed and drained (returning nil), or a write fails (returning
// that error). It closes the consumer when it returns. Run must be called
// once.
func (w *Writer) Run(ctx context.Context) error {
	defer close(w.stopped)
	defer w.c.Close()
	c := w.c
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer c.release()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.drainControl(); err != nil {
			return err
		}
		c.flushLocal()
		if c.flightHold() {
			c.release() // the ring may reuse what we wrote last
			frame, closed, err := c.waitFlight(ctx, w.ctrl)
			if err != nil {
				return err
			}
			if frame != nil {
				if err := w.writeControl(frame); err != nil {
					return err
				}
			}
			if !closed {
				continue
			}
		}
		ch, from, to, res := c.take()
		switch res {
		case takeData:
			if err := w.writeRun(ch, from, to); err != nil {
				return err
			}
		case takeEmpty:
			frame, err := c.sleep(ctx, w.ctrl)
			if err != nil {
				return err
			}
			if frame != nil {
				if err := w.writeControl(frame); err != nil {
					return err
				}
			}
		case takeClosed, takeEOF:
			return w.drainControl()
		}
	}
}

// drainControl writes every control frame queued so far.
func (w *Writer) drainControl() error {
	for {
		select {
		case frame := <-w.ctrl:
			if err := w.writeControl(frame); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (w *Writer) writeControl(frame []byte) error {
	if err := w.write(frame); err != nil {
		return fmt.Errorf("relay: write control frame: %w", err)
	}
	w.c.control.Add(1)
	return nil
}

// writeRun writes the frames of sequences [from, to) held in ch that pass
// the consumer's filter. An unfiltered run goes out in one Write straight from
// the ring; a run with gaps is gathered into the scratch buffer first.
func (w *Writer) writeRun(ch *chunk, from, to uint64) error {
	r := w.c.r
	base := int(from%uint64(r.per)) * r.stride
	run := ch.buf[base : base+int(to-from)*r.stride]
	n := uint64(to - from)
	f, active := w.c.loadFilter()
	if active {
		run, n = w.gather(&f, run)
	} else {
		w.c.countPassed(run, r.stride)
	}
	if len(run) == 0 {
		return nil
	}
	if err := w.write(run); err != nil {
		return fmt.Errorf("relay: write symbols: %w", err)
	}
	w.c.sent.Add(n)
	return nil
}

// gather returns the frames of run that pass f, as one slice of the ring when
// they are contiguous and as a copy in the scratch buffer otherwise, with the
// number of frames.
func (w *Writer) gather(f *filter, run []byte) ([]byte, uint64) {
	stride := w.c.r.stride
	lo, hi := -1, -1 // contiguous passing region of run, while copying is not needed
	copying := false
	out := w.scratch[:0]
	var n uint64
	for off := 0; off < len(run); off += stride {
		frame := run[off : off+stride]
		if !f.pass(frame) {
			w.c.local.filtered++ // published by flushLocal
			continue
		}
		n++
		switch {
		case copying:
			out = append(out, frame...)
		case lo < 0:
			lo, hi = off, off+stride
		case hi == off:
			hi += stride
		default:
			copying = true
			out = append(out, run[lo:hi]...)
			out = append(out, frame...)
		}
	}
	if copying {
		return out, n
	}
	if lo < 0 {
		return nil, 0
	}
	return run[lo:hi], n
}

// write issues one Write and turns a short write into an error.
func (w *Writer) write(p []byte) error {
	n, err := w.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err == nil {
		w.c.meter.tick(time.Now(), w.c.bytes.Add(uint64(len(p))))
	}
	return err
}
