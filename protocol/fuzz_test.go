package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Each fuzz target checks that a parser never panics, that it fails only with
// ErrMalformed (or an end-of-input error where it reads a stream), and that
// whatever it accepts re-encodes to exactly the input: every message has one
// encoding.

func FuzzDecodeManifest(f *testing.F) {
	f.Add(mustEncode(f, testManifest()))
	m := testManifest()
	m.Name = ""
	f.Add(mustEncode(f, m))
	m.BlockHash = BlockHashBLAKE3
	f.Add(mustEncode(f, m))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		if SanitizeName(m.Name) != m.Name {
			t.Fatalf("name %q not sanitised", m.Name)
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		if raw, err := decodeManifest(b); err != nil || raw.Name != m.Name {
			return // the name was sanitised, so the bytes differ
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

func FuzzSubscribe(f *testing.F) {
	c := testCID(f)
	for _, s := range []*Subscribe{{CID: c, Stripes: 1}, {CID: c, Stripes: 8, Stripe: 5, Probe: true, Finished: BlockSet{1, 2, 3}}} {
		b, err := s.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSubscribe(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		again, err := s.Append(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs (%v):\n%x\n%x", err, b, again)
		}
	})
}

func FuzzSubscribeReply(f *testing.F) {
	for _, s := range []*SubscribeReply{
		{Accepted: true, Path: testPath(f, 3), Width: 1 << 20, Depth: 2},
		{Reason: "full", Redirect: testPeers(f, 2, 2)},
	} {
		b, err := s.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSubscribeReply(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		again, err := s.Append(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs (%v):\n%x\n%x", err, b, again)
		}
	})
}

func FuzzStatus(f *testing.F) {
	for _, s := range []*Status{testStatus(f), {Role: RoleNone}} {
		b, err := s.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeStatus(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		again, err := s.Append(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs (%v):\n%x\n%x", err, b, again)
		}
	})
}

func FuzzRequest(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteRequest(&buf, testCID(f)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ReadRequest(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := WriteRequest(&out, c); err != nil || !bytes.HasPrefix(b, out.Bytes()) {
			t.Fatalf("re-encoding differs (%v)", err)
		}
	})
}

func FuzzManifestResponse(f *testing.F) {
	mb := mustEncode(f, testManifest())
	c := ManifestCID(mb)
	var buf bytes.Buffer
	if err := WriteManifestResponse(&buf, mb); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	buf.Reset()
	if err := WriteManifestError(&buf, ManifestNotFound, "gone"); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, raw, err := ReadManifestResponse(bytes.NewReader(b), c)
		var re *RemoteError
		switch {
		case err == nil:
			if m == nil || !bytes.Equal(raw, mb) {
				t.Fatal("accepted a manifest that is not the one named")
			}
		case errors.As(err, &re):
			if len(re.Reason) > MaxReasonLen {
				t.Fatalf("reason of %d bytes", len(re.Reason))
			}
		case !errors.Is(err, ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF):
			t.Fatalf("unexpected error: %v", err)
		}
	})
}

// FuzzFrameReader reads a whole stream of frames and re-encodes each one:
// known frames must come back byte for byte, so that the only difference
// between input and output is the skipped extension frames.
func FuzzFrameReader(f *testing.F) {
	const T = 16
	var s []byte
	s = AppendSymbolFrame(s, 1, 2, bytes.Repeat([]byte{7}, T))
	s, _ = AppendPathFrame(s, testPath(f, 2))
	s = AppendWidthFrame(s, 1<<40)
	s = append(s, 0x82, 2, 9, 9)
	s, _ = AppendHeldFrame(s, Held{SBN: 4, N: 10, Bits: []byte{0xff, 0x03}})
	s = AppendFinishedFrame(s, BlockSet{0xff})
	s, _ = AppendCreditFrame(s, []Credit{{SBN: 3, Base: 1000, Allow: 24}, {SBN: 255, Base: 0, Allow: MaxCreditAllow}})
	s = AppendGoodbyeFrame(s, GoodbyeLoop, "loop")
	f.Add(s)
	f.Add([]byte{FrameWidth, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFrameReader(bytes.NewReader(b), T)
		var out []byte
		for {
			fm, err := fr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			switch fm.Type {
			case FrameSymbol:
				if len(fm.Payload) != T || fm.ESI > MaxESI {
					t.Fatalf("symbol frame %+v", fm)
				}
				out = AppendSymbolFrame(out, fm.SBN, fm.ESI, fm.Payload)
				continue
			case FramePath:
				if p, err := fm.Path(); err == nil {
					if out, err = AppendPathFrame(out, p); err != nil {
						t.Fatal(err)
					}
					continue
				}
			case FrameWidth:
				if w, err := fm.Width(); err == nil {
					out = AppendWidthFrame(out, w)
					continue
				}
			case FrameFinished:
				if fs, err := fm.Finished(); err == nil {
					out = AppendFinishedFrame(out, fs)
					continue
				}
			case FrameCredit:
				if cs, err := fm.Credits(nil); err == nil {
					if out, err = AppendCreditFrame(out, cs); err != nil {
						t.Fatal(err)
					}
					continue
				}
			case FrameHeld:
				if h, err := fm.Held(); err == nil {
					if out, err = AppendHeldFrame(out, h); err != nil {
						t.Fatal(err)
					}
					continue
				}
			case FrameRedirect:
				if ais, err := fm.Redirect(); err == nil {
					if out, err = AppendRedirectFrame(out, ais); err != nil {
						t.Fatal(err)
					}
					continue
				}
			case FrameGoodbye:
				if g, err := fm.Goodbye(); err == nil {
					out = AppendGoodbyeFrame(out, g.Code, g.Text)
					if string(fm.Payload[1:]) != g.Text {
						return // the text was cleaned, so bytes differ
					}
					continue
				}
			default:
				t.Fatalf("frame type %#x returned", fm.Type)
			}
			// An invalid payload: keep it raw.
			out = appendControlHeader(out, fm.Type, len(fm.Payload))
			out = append(out, fm.Payload...)
		}
		if len(out)+fr.skipped != len(b) {
			t.Fatalf("%d bytes re-encoded and %d skipped from %d", len(out), fr.skipped, len(b))
		}
		if fr.skipped == 0 && !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, out)
		}
	})
}
