package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// EventKind says what an Event reports.
type EventKind int

// The events of a download, in the order they usually come.
const (
	// EventLookup: the content router is asked for providers.
	EventLookup EventKind = iota + 1
	// EventAsked: Peer was asked for the manifest; Err is its answer (nil:
	// it had the content and its manifest matched the CID).
	EventAsked
	// EventManifest: the manifest is verified; Progress tells the size and
	// the number of blocks.
	EventManifest
	// EventParent: Peer now feeds Stripe (a parent or a probe).
	EventParent
	// EventBlock: Block is decoded, verified and written.
	EventBlock
	// EventDone: the download ended; Err is nil once the whole file is
	// here and verified.
	EventDone
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case EventLookup:
		return "lookup"
	case EventAsked:
		return "asked"
	case EventManifest:
		return "manifest"
	case EventParent:
		return "parent"
	case EventBlock:
		return "block"
	case EventDone:
		return "done"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is one step of a download, for progress displays. Progress is a
// snapshot of the session for EventManifest, EventBlock and EventDone.
type Event struct {
	Kind     EventKind
	At       time.Time
	Peer     peer.ID
	Stripe   int
	Block    int
	Err      error
	Progress Progress
}

// WithEvents sends the download's events to ch, from the lookup on. A send
// never blocks the download: when ch is full the event is dropped, so give
// it room (64 is plenty); every EventBlock carries the whole progress, so a
// dropped one loses nothing a later one does not tell. The channel is not
// closed; Get's return is the end.
func WithEvents(ch chan<- Event) GetOption {
	return func(c *getConfig) { c.events = append(c.events, ch) }
}

// WithWriter also writes the content to w, in order, each block once it is
// verified: nothing unverified reaches w. Get returns once the last byte is
// written. An error from w ends the download (its partial state is kept
// for a resume).
func WithWriter(w io.Writer) GetOption {
	return func(c *getConfig) { c.writer = w }
}

// emit sends e to every events channel without blocking.
func (c *getConfig) emit(e Event) {
	if len(c.events) == 0 {
		return
	}
	e.At = time.Now()
	for _, ch := range c.events {
		select {
		case ch <- e:
		default:
		}
	}
}

// GetTo downloads the content named by c and writes it to w, in order, as
// its blocks are verified (a download with WithWriter into a temporary file
// that is removed when the node stops serving the content). Unlike Get, an
// interrupted GetTo cannot be resumed.
func (n *Node) GetTo(ctx context.Context, c cid.Cid, w io.Writer, opts ...GetOption) error {
	if s := n.session(c); s != nil {
		return fmt.Errorf("content %s already has a session on this node", c)
	}
	dir, err := os.MkdirTemp(n.cfg.scratchDir, "romap2p-get-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	opts = append(opts, WithWriter(w), withCleanup(func() error { return os.RemoveAll(dir) }))
	err = n.Get(ctx, c, dir+string(os.PathSeparator)+c.String(), opts...)
	if n.session(c) == nil {
		_ = os.RemoveAll(dir) // no session holds the file
	}
	return err
}

// withCleanup runs f when the download's session ends.
func withCleanup(f func() error) GetOption {
	return func(c *getConfig) { c.cleanup = append(c.cleanup, f) }
}

// follow waits for the download of s to end, sending events and writing
// verified blocks to the writer in order as they come.
func (n *Node) follow(ctx context.Context, s *session, cfg *getConfig) error {
	if cfg.writer == nil && len(cfg.events) == 0 {
		return s.blocks.wait(ctx)
	}
	if cfg.writer != nil && s.fetch == nil {
		return errors.New("content is served from a file on this node: read it there")
	}
	z := s.numBlocks()
	var told protocol.BlockSet
	next := 0 // the next block to write
	type link struct {
		p      peer.ID
		stripe int
	}
	parents := map[link]bool{}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := s.blocks.changes()
		done, err := s.blocks.ended()
		fin := s.blocks.finishedSet()
		if done && err == nil {
			fin = protocol.BlockSet{}
			for b := 0; b < z; b++ {
				fin.Add(uint8(b))
			}
		}
		for _, u := range s.up.list() {
			if l := (link{u.peer, u.stripe}); !parents[l] {
				parents[l] = true
				cfg.emit(Event{Kind: EventParent, Peer: u.peer, Stripe: u.stripe})
			}
		}
		for b := 0; b < z; b++ {
			if fin.Has(uint8(b)) && !told.Has(uint8(b)) {
				told.Add(uint8(b))
				cfg.emit(Event{Kind: EventBlock, Block: b, Progress: s.progress()})
			}
		}
		if cfg.writer != nil {
			for next < z && fin.Has(uint8(next)) {
				if werr := writeBlock(cfg.writer, s, next); werr != nil {
					n.dropSession(s)
					cfg.emit(Event{Kind: EventDone, Err: werr, Progress: s.progress()})
					return werr
				}
				next++
			}
		}
		if done {
			cfg.emit(Event{Kind: EventDone, Err: err, Progress: s.progress()})
			return err
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeBlock copies verified block b of a download to w.
func writeBlock(w io.Writer, s *session, b int) error {
	r := io.NewSectionReader(s.fetch.reader, s.oti.BlockOffset(b), s.oti.BlockLen(b))
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("write block %d: %w", b, err)
	}
	return nil
}
