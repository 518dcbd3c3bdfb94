package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/romap2p/romap2p/fountain"
	"github.com/romap2p/romap2p/protocol"
)

// AddOption configures Add.
type AddOption func(*addConfig)

type addConfig struct {
	symbolSize int
	name       string
	noName     bool
	blockHash  uint64
}

// BlockHash sets the hash function of the manifest's block hashes by its
// multihash code: protocol.BlockHashBLAKE3 (the default) or
// protocol.BlockHashSHA256, which peers of the first release also read.
func BlockHash(code uint64) AddOption { return func(c *addConfig) { c.blockHash = code } }

// SymbolSize sets T, the symbol size in bytes (default 4096).
func SymbolSize(t int) AddOption { return func(c *addConfig) { c.symbolSize = t } }

// Name sets the file name recorded in the manifest (default: the file's base
// name).
func Name(name string) AddOption { return func(c *addConfig) { c.name = name } }

// Anonymous records no file name in the manifest.
func Anonymous() AddOption { return func(c *addConfig) { c.noName = true } }

// DefaultSymbolSize is T unless SymbolSize says otherwise.
const DefaultSymbolSize = 4096

// Add prepares a file for serving: it partitions it, hashes every source
// block, builds the manifest and its CID, starts a source session that
// generates symbols for whoever subscribes, and announces the CID in the
// content router. The file must not change while it is served.
func (n *Node) Add(ctx context.Context, path string, opts ...AddOption) (cid.Cid, error) {
	f, err := os.Open(path)
	if err != nil {
		return cid.Undef, fmt.Errorf("add: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return cid.Undef, fmt.Errorf("add: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return cid.Undef, fmt.Errorf("add %s: not a regular file", path)
	}
	opts = append([]AddOption{Name(filepath.Base(path))}, opts...)
	c, err := n.add(ctx, f, st.Size(), f.Close, opts)
	if err != nil {
		return cid.Undef, fmt.Errorf("add %s: %w", path, err)
	}
	return c, nil
}

// AddReaderAt serves size bytes read from r, as Add does a file. r must
// hold the same bytes, and stay readable, until the node stops serving the
// content (Drop or Close); if r is an io.Closer it is closed then.
func (n *Node) AddReaderAt(ctx context.Context, r io.ReaderAt, size int64, opts ...AddOption) (cid.Cid, error) {
	var closeFn func() error
	if c, ok := r.(io.Closer); ok {
		closeFn = c.Close
	}
	c, err := n.add(ctx, r, size, closeFn, opts)
	if err != nil {
		return cid.Undef, fmt.Errorf("add: %w", err)
	}
	return c, nil
}

// AddReader serves everything read from r until EOF. The bytes are first
// copied to an unlinked file in the scratch directory (WithScratchDir),
// which the node reads while it serves them and which disappears when it
// stops.
func (n *Node) AddReader(ctx context.Context, r io.Reader, opts ...AddOption) (cid.Cid, error) {
	f, err := os.CreateTemp(n.cfg.scratchDir, ".romap2p-add-*")
	if err != nil {
		return cid.Undef, fmt.Errorf("add: copy: %w", err)
	}
	_ = os.Remove(f.Name())
	size, err := io.Copy(f, readerCtx{ctx, r})
	if err != nil {
		f.Close()
		return cid.Undef, fmt.Errorf("add: copy: %w", err)
	}
	c, err := n.add(ctx, f, size, f.Close, opts)
	if err != nil {
		return cid.Undef, fmt.Errorf("add: %w", err)
	}
	return c, nil
}

// readerCtx stops a copy once ctx ends.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// add serves size bytes of r; closeFn (if not nil) releases r, at once on
// an error, else when the session ends.
func (n *Node) add(ctx context.Context, r io.ReaderAt, size int64, closeFn func() error, opts []AddOption) (c cid.Cid, err error) {
	owned := false
	defer func() {
		if !owned && closeFn != nil {
			_ = closeFn()
		}
	}()
	cfg := addConfig{symbolSize: DefaultSymbolSize, blockHash: protocol.BlockHashBLAKE3}
	for _, o := range opts {
		o(&cfg)
	}
	if size <= 0 {
		return cid.Undef, errors.New("empty content")
	}
	name := cfg.name
	if cfg.noName {
		name = ""
	}
	m, _, err := buildManifest(ctx, r, size, cfg.symbolSize, cfg.blockHash, protocol.SanitizeName(name))
	if err != nil {
		return cid.Undef, err
	}
	mb, err := m.Encode()
	if err != nil {
		return cid.Undef, err
	}
	c = protocol.ManifestCID(mb)
	if s := n.session(c); s != nil {
		return c, nil // already served
	}
	s, err := newSession(n, c, m, mb, roleOrigin)
	if err != nil {
		return cid.Undef, err
	}
	if closeFn != nil {
		s.addCloser(closeFn)
	}
	owned = true
	if err := s.becomeSource(r); err != nil {
		s.close()
		return cid.Undef, err
	}
	if err := n.addSession(s); err != nil {
		s.close()
		return cid.Undef, err
	}
	s.down.g.Go(s.down.watchSlow) // also checks for children that show no life (admit.go)
	n.provide(c)
	log.Infow("serving", "cid", c, "name", name, "size", size, "blocks", s.numBlocks(), "T", s.t)
	return c, nil
}

// buildManifest partitions a file and hashes each source block.
func buildManifest(ctx context.Context, r io.ReaderAt, size int64, t int, hashFn uint64, name string) (*protocol.Manifest, fountain.OTI, error) {
	oti, err := fountain.NewOTI(size, t)
	if err != nil {
		return nil, oti, err
	}
	m := &protocol.Manifest{
		Version:    protocol.ManifestVersion,
		Size:       uint64(size),
		SymbolSize: oti.T,
		SubBlocks:  oti.N,
		Alignment:  oti.Al,
		BlockHash:  hashFn,
		Name:       name,
	}
	if hashFn != protocol.BlockHashSHA256 && hashFn != protocol.BlockHashBLAKE3 {
		return nil, oti, fmt.Errorf("unsupported block hash function 0x%x", hashFn)
	}
	buf := make([]byte, 1<<20)
	for b := 0; b < oti.Blocks(); b++ {
		if err := ctx.Err(); err != nil {
			return nil, oti, err
		}
		h := m.NewBlockHasher()
		off, end := oti.BlockOffset(b), oti.BlockOffset(b)+oti.BlockLen(b)
		for off < end {
			k := int(min(int64(len(buf)), end-off))
			if _, err := r.ReadAt(buf[:k], off); err != nil {
				return nil, oti, fmt.Errorf("read block %d: %w", b, err)
			}
			h.Write(buf[:k])
			off += int64(k)
		}
		var sum [32]byte
		h.Sum(sum[:0])
		m.BlockHashes = append(m.BlockHashes, sum)
	}
	if err := m.Validate(); err != nil {
		return nil, oti, err
	}
	return m, oti, nil
}
