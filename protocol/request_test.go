package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func TestRequestRoundTrip(t *testing.T) {
	c := testCID(t)
	var buf bytes.Buffer
	if err := WriteRequest(&buf, c); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("next")
	got, err := ReadRequest(&buf)
	if err != nil || !got.Equals(c) {
		t.Fatalf("ReadRequest = %s, %v; want %s", got, err, c)
	}
	if buf.String() != "next" {
		t.Fatalf("over-read: left %q", buf.String())
	}
	mh, _ := multihash.Sum([]byte("x"), multihash.SHA2_256, -1)
	if err := WriteRequest(&buf, cid.NewCidV1(cid.Raw, mh)); err == nil {
		t.Fatal("raw CID accepted")
	}
	for name, b := range map[string][]byte{
		"raw CID":   appendBytes(nil, cid.NewCidV1(cid.Raw, mh).Bytes()),
		"garbage":   appendBytes(nil, []byte("not a cid")),
		"too long":  appendBytes(nil, make([]byte, MaxCIDLen+1)),
		"trailing":  appendBytes(nil, append(c.Bytes(), 0)),
		"empty CID": {0},
	} {
		if _, err := ReadRequest(bytes.NewReader(b)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want malformed", name, err)
		}
	}
	if _, err := ReadRequest(bytes.NewReader(nil)); !errors.Is(err, io.EOF) {
		t.Errorf("empty stream: %v", err)
	}
}

func TestManifestResponse(t *testing.T) {
	m := testManifest()
	b := mustEncode(t, m)
	c := ManifestCID(b)

	var buf bytes.Buffer
	if err := WriteManifestResponse(&buf, b); err != nil {
		t.Fatal(err)
	}
	got, raw, err := ReadManifestResponse(&buf, c)
	if err != nil || got.Name != m.Name || !bytes.Equal(raw, b) {
		t.Fatalf("ReadManifestResponse = %+v, %v", got, err)
	}

	// A manifest that does not match the CID asked for.
	other := testManifest()
	other.Name = "other"
	buf.Reset()
	if err := WriteManifestResponse(&buf, mustEncode(t, other)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadManifestResponse(&buf, c); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wrong manifest: %v", err)
	}

	buf.Reset()
	if err := WriteManifestError(&buf, ManifestNotFound, "no such content"); err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadManifestResponse(&buf, c)
	var re *RemoteError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &re) || re.Reason != "no such content" {
		t.Fatalf("not found: %v", err)
	}

	buf.Reset()
	if err := WriteManifestError(&buf, ManifestError, strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadManifestResponse(&buf, c)
	if errors.Is(err, ErrNotFound) || !errors.As(err, &re) || re.Status != ManifestError || len(re.Reason) != MaxReasonLen {
		t.Fatalf("error status: %v", err)
	}
	if err := WriteManifestError(&buf, ManifestOK, ""); err == nil {
		t.Fatal("ManifestOK accepted as a failure")
	}

	for name, in := range map[string][]byte{
		"unknown status":  {9, 0},
		"oversize body":   append([]byte{0}, appendBytes(nil, make([]byte, MaxManifestSize+1))...),
		"oversize reason": append([]byte{1}, appendBytes(nil, make([]byte, MaxReasonLen+1))...),
	} {
		if _, _, err := ReadManifestResponse(bytes.NewReader(in), c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
	if _, _, err := ReadManifestResponse(bytes.NewReader(nil), c); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("empty response: %v", err)
	}
}
