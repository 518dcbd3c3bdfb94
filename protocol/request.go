package protocol

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// WriteRequest writes the request that opens a manifest or status stream:
// the content ID as a length-prefixed byte string.
func WriteRequest(w io.Writer, c cid.Cid) error {
	if err := CheckCID(c); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if err := writeMessage(w, c.Bytes()); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	return nil
}

// ReadRequest reads the request that opens a manifest or status stream.
func ReadRequest(r io.Reader) (cid.Cid, error) {
	b, err := readMessage(r, MaxCIDLen)
	if err != nil {
		return cid.Undef, fmt.Errorf("request: %w", err)
	}
	c, err := parseCID(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("request: %w: %w", err, ErrMalformed)
	}
	return c, nil
}

// ManifestStatus is the first byte of a manifest response.
type ManifestStatus byte

// Manifest response status codes.
const (
	// ManifestOK is followed by the manifest bytes.
	ManifestOK ManifestStatus = 0
	// ManifestNotFound means the peer does not have the manifest; a reason
	// follows.
	ManifestNotFound ManifestStatus = 1
	// ManifestError means the peer failed to answer; a reason follows.
	ManifestError ManifestStatus = 2
)

func (s ManifestStatus) String() string {
	switch s {
	case ManifestOK:
		return "ok"
	case ManifestNotFound:
		return "not found"
	case ManifestError:
		return "error"
	}
	return fmt.Sprintf("status %d", byte(s))
}

// ErrNotFound is wrapped by the error ReadManifestResponse returns when the
// peer does not have the manifest.
var ErrNotFound = errors.New("not found")

// RemoteError is a failure reported by the remote peer.
type RemoteError struct {
	Status ManifestStatus
	Reason string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("remote peer: %s: %q", e.Status, e.Reason)
}

// Is makes errors.Is(err, ErrNotFound) true for a not-found reply.
func (e *RemoteError) Is(target error) bool {
	return target == ErrNotFound && e.Status == ManifestNotFound
}

// WriteManifestResponse answers a manifest request with ManifestOK and the
// encoded manifest.
func WriteManifestResponse(w io.Writer, manifest []byte) error {
	if len(manifest) > MaxManifestSize {
		return fmt.Errorf("manifest response: %d bytes exceeds limit %d", len(manifest), MaxManifestSize)
	}
	return writeStatusAndBody(w, ManifestOK, manifest)
}

// WriteManifestError answers a manifest request with a failure status and a
// reason, which is cut to MaxReasonLen bytes.
func WriteManifestError(w io.Writer, status ManifestStatus, reason string) error {
	if status != ManifestNotFound && status != ManifestError {
		return fmt.Errorf("manifest response: %s is not a failure status", status)
	}
	return writeStatusAndBody(w, status, []byte(cleanReason(reason)))
}

func writeStatusAndBody(w io.Writer, status ManifestStatus, body []byte) error {
	buf := append([]byte{byte(status)}, appendBytes(nil, body)...)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("manifest response: %w", err)
	}
	return nil
}

// ReadManifestResponse reads the answer to a request for c, checks the
// manifest against c and decodes it. It returns the decoded manifest and its
// bytes. A failure status yields a *RemoteError.
func ReadManifestResponse(r io.Reader, c cid.Cid) (*Manifest, []byte, error) {
	var st byte
	if err := readFullByte(r, &st); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, fmt.Errorf("manifest response: %w", err)
	}
	switch ManifestStatus(st) {
	case ManifestOK:
		b, err := readMessage(r, MaxManifestSize)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest response: %w", noEOF(err))
		}
		m, err := VerifyManifest(c, b)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest response: %w", err)
		}
		return m, b, nil
	case ManifestNotFound, ManifestError:
		b, err := readMessage(r, MaxReasonLen)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest response: %w", noEOF(err))
		}
		return nil, nil, &RemoteError{Status: ManifestStatus(st), Reason: cleanReason(string(b))}
	default:
		return nil, nil, fmt.Errorf("manifest response: unknown status %d: %w", st, ErrMalformed)
	}
}

// cleanReason makes s valid UTF-8 of at most MaxReasonLen bytes, cutting on
// a character boundary.
func cleanReason(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxReasonLen {
		return s
	}
	cut := MaxReasonLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
