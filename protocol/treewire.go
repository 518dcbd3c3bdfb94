package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// The tree protocol (TreeID) serves block tree data. The client sends one
// TreeRequest naming a CID and a set of blocks; the server answers every
// named block, in increasing SBN order, with a tree entry (the block's tree
// data, or a mark that it has none) and closes the stream. The client reads
// the entries with a TreeReader, which checks each tree against the
// manifest before returning it.

// maxTreeRequest bounds a TreeRequest body: a CID with its length and a
// block set.
const maxTreeRequest = 1 + MaxCIDLen + len(BlockSet{})

// Tree entry status bytes.
const (
	// treeOK is followed by the block's tree data.
	treeOK byte = 0
	// treeUnavailable says the server has neither the block nor its
	// verified tree data.
	treeUnavailable byte = 1
)

// TreeRequest asks a peer for the tree data of some blocks of one content.
type TreeRequest struct {
	// CID names the content.
	CID cid.Cid
	// Blocks holds the blocks wanted; it is not empty.
	Blocks BlockSet
}

// Append appends the encoded message body (without its length prefix) to
// dst.
func (q *TreeRequest) Append(dst []byte) ([]byte, error) {
	if q.Blocks.Count() == 0 {
		return dst, errors.New("tree request: no blocks")
	}
	dst, err := appendCID(dst, q.CID)
	if err != nil {
		return dst, fmt.Errorf("tree request: %w", err)
	}
	return append(dst, q.Blocks[:]...), nil
}

// DecodeTreeRequest decodes a TreeRequest message body.
func DecodeTreeRequest(b []byte) (*TreeRequest, error) {
	d := decoder{b: b, msg: "tree request"}
	q := &TreeRequest{}
	q.CID = d.cid("cid")
	q.Blocks = d.blockSet("blocks")
	if d.err == nil && q.Blocks.Count() == 0 {
		d.fail("no blocks")
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return q, nil
}

// WriteTreeRequest writes q as a length-prefixed message.
func WriteTreeRequest(w io.Writer, q *TreeRequest) error {
	b, err := q.Append(nil)
	if err != nil {
		return err
	}
	if err := writeMessage(w, b); err != nil {
		return fmt.Errorf("tree request: %w", err)
	}
	return nil
}

// ReadTreeRequest reads a length-prefixed TreeRequest. It reads nothing past
// the message.
func ReadTreeRequest(r io.Reader) (*TreeRequest, error) {
	b, err := readMessage(r, maxTreeRequest)
	if err != nil {
		return nil, fmt.Errorf("tree request: %w", err)
	}
	return DecodeTreeRequest(b)
}

// AppendTreeEntry appends the answer for tree t's block: its tree data.
func AppendTreeEntry(dst []byte, t *BlockTree) []byte {
	dst = append(dst, t.layout.SBN, treeOK)
	dst = binary.AppendUvarint(dst, uint64(t.layout.Size()))
	return t.AppendData(dst)
}

// AppendTreeUnavailable appends the answer for block sbn when the server has
// neither the block nor its verified tree data (or does not know the
// content, or the block is outside it).
func AppendTreeUnavailable(dst []byte, sbn uint8) []byte {
	return append(dst, sbn, treeUnavailable)
}

// TreeReader reads the answer to a TreeRequest, one entry per requested
// block, and checks each tree against the manifest.
type TreeReader struct {
	r    io.Reader
	m    *Manifest
	want BlockSet
	next int // lowest SBN not yet answered
}

// NewTreeReader returns a reader of the answer to a request for the blocks
// in want of the content m describes.
func NewTreeReader(r io.Reader, m *Manifest, want BlockSet) *TreeReader {
	return &TreeReader{r: r, m: m, want: want}
}

// Next reads the answer for the next requested block. The tree is nil when
// the server has none for it. After the last requested block Next returns
// io.EOF and reads nothing more. Errors caused by the server wrap
// ErrMalformed (a broken answer) or ErrTreeMismatch (tree data that does not
// match the manifest, which a conforming server never sends); either way the
// stream is of no further use.
func (tr *TreeReader) Next() (uint8, *BlockTree, error) {
	for tr.next < MaxSourceBlocks && !tr.want.Has(uint8(tr.next)) {
		tr.next++
	}
	if tr.next == MaxSourceBlocks {
		return 0, nil, io.EOF
	}
	sbn := uint8(tr.next)
	var hdr [2]byte
	if _, err := io.ReadFull(tr.r, hdr[:]); err != nil {
		return sbn, nil, fmt.Errorf("tree entry %d: %w", sbn, noEOF(err))
	}
	if hdr[0] != sbn {
		return sbn, nil, malformed("tree entry: block %d, want %d", hdr[0], sbn)
	}
	switch hdr[1] {
	case treeUnavailable:
		tr.next++
		return sbn, nil, nil
	case treeOK:
	default:
		return sbn, nil, malformed("tree entry %d: unknown status %d", sbn, hdr[1])
	}
	if int(sbn) >= len(tr.m.BlockHashes) {
		return sbn, nil, malformed("tree entry %d: tree data for a block outside the manifest's %d", sbn, len(tr.m.BlockHashes))
	}
	l, err := NewTreeLayout(tr.m, sbn)
	if err != nil {
		if errors.Is(err, ErrUnverifiable) {
			return sbn, nil, fmt.Errorf("tree entry %d: tree data for content without trees: %w: %w", sbn, err, ErrMalformed)
		}
		return sbn, nil, fmt.Errorf("tree entry %d: %w", sbn, err)
	}
	n, err := readUvarint(tr.r)
	if err != nil {
		return sbn, nil, fmt.Errorf("tree entry %d: length: %w", sbn, noEOF(err))
	}
	if n != uint64(l.Size()) {
		return sbn, nil, malformed("tree entry %d: %d bytes of tree data, want %d", sbn, n, l.Size())
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(tr.r, data); err != nil {
		return sbn, nil, fmt.Errorf("tree entry %d: data: %w", sbn, noEOF(err))
	}
	t, err := DecodeBlockTree(tr.m, sbn, data)
	if err != nil {
		return sbn, nil, fmt.Errorf("tree entry: %w", err)
	}
	tr.next++
	return sbn, t, nil
}
