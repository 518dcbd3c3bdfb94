//go:build romap2p_saboteur

// This file is built only with the romap2p_saboteur build tag, never into
// the ordinary binary: it makes `get` corrupt the symbols it relays, so that
// the testbed can run a saboteur as a real process beside honest ones.
//
//	ROMAP2P_SABOTAGE=honest|all|1%|repair|later   what to corrupt (see internal/hostile)
//	ROMAP2P_SABOTAGE_AFTER=N                      later: symbols sent honestly first (default: a quarter of K summed over the blocks)
//	ROMAP2P_SABOTAGE_RECORD=FILE                  the saboteur's record, one JSON line, rewritten every second and at exit
//
// Without ROMAP2P_SABOTAGE the build behaves as the ordinary one.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/fountain"
	"github.com/romap2p/romap2p/internal/hostile"
	"github.com/romap2p/romap2p/node"
)

const (
	envSabotage       = "ROMAP2P_SABOTAGE"
	envSabotageAfter  = "ROMAP2P_SABOTAGE_AFTER"
	envSabotageRecord = "ROMAP2P_SABOTAGE_RECORD"
	// recordEvery is how often the record file is rewritten while get
	// runs (a process killed before its exit keeps the last one).
	recordEvery = time.Second
)

// getHook wraps every symbols stream a get's node feeds with a
// hostile.Saboteur. The saboteur is made when the first stream opens: by
// then the node holds the manifest, so the symbol size and each block's K
// (which tell source from repair symbols) are known.
type getHook struct {
	mode   hostile.Sabotage
	after  int // later: symbols sent honestly first; < 0: a quarter of the file's
	record string

	mu        sync.Mutex
	n         *node.Node
	c         cid.Cid
	sb        *hostile.Saboteur
	unwrapped int // streams opened before the manifest was known, left honest

	stop chan struct{}
	done chan struct{}
}

// sabotageRecord is the record file's line.
type sabotageRecord struct {
	hostile.Record
	// Peer is the saboteur's own peer ID.
	Peer string `json:"peer"`
	// Unwrapped counts streams that went out honest (opened before the
	// manifest was known).
	Unwrapped int `json:"unwrapped"`
	// Written is when the record was written.
	Written time.Time `json:"written"`
}

func newGetHook(env *cliEnv) (*getHook, error) {
	v := env.getenv(envSabotage)
	if v == "" {
		return nil, nil
	}
	mode, err := hostile.ParseSabotage(v)
	if err != nil {
		return nil, usageError{fmt.Sprintf("%s: %v", envSabotage, err)}
	}
	h := &getHook{mode: mode, after: -1, record: env.getenv(envSabotageRecord)}
	if a := env.getenv(envSabotageAfter); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			return nil, usageError{fmt.Sprintf("%s: %q is not a symbol count", envSabotageAfter, a)}
		}
		h.after = n
	}
	fmt.Fprintf(env.stderr, "romap2p get: saboteur build: corrupting what this node sends (%s=%s)\n", envSabotage, mode)
	return h, nil
}

func (h *getHook) shaper() func(from, to peer.ID, w io.Writer) io.Writer {
	if h == nil {
		return nil
	}
	return func(_, to peer.ID, w io.Writer) io.Writer {
		sb := h.saboteur()
		if sb == nil {
			h.mu.Lock()
			h.unwrapped++
			h.mu.Unlock()
			log.Warnw("saboteur: a symbols stream opened before the manifest was known goes out honest", "to", to)
			return w
		}
		return sb.Writer(to, w)
	}
}

// saboteur returns the saboteur, making it once the node's session knows
// the file's layout; nil before.
func (h *getHook) saboteur() *hostile.Saboteur {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sb != nil || h.n == nil {
		return h.sb
	}
	p, ok := h.n.Progress(h.c)
	if !ok || p.SymbolSize <= 0 || p.Blocks <= 0 {
		return nil
	}
	// K of a block depends only on F, T and Z (RFC 6330's partition).
	oti := fountain.OTI{F: uint64(p.Size), T: uint16(p.SymbolSize), Z: uint16(p.Blocks)}
	sb := hostile.NewSaboteur(h.mode, p.SymbolSize)
	sb.SetBlockSymbols(func(sbn uint8) uint32 { return uint32(oti.BlockSymbols(int(sbn))) })
	after := h.after
	if after < 0 {
		for b := range oti.Blocks() {
			after += oti.BlockSymbols(b)
		}
		after /= 4
	}
	sb.SetAfter(after)
	h.sb = sb
	return sb
}

func (h *getHook) started(n *node.Node, c cid.Cid) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.n, h.c = n, c
	h.mu.Unlock()
	if h.record == "" {
		return
	}
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.done)
		tk := time.NewTicker(recordEvery)
		defer tk.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tk.C:
				h.writeRecord()
			}
		}
	}()
}

func (h *getHook) close() {
	if h == nil || h.stop == nil {
		return
	}
	close(h.stop)
	<-h.done
	h.writeRecord()
}

// writeRecord replaces the record file with the saboteur's record so far.
func (h *getHook) writeRecord() {
	h.mu.Lock()
	sb, n, unwrapped := h.sb, h.n, h.unwrapped
	h.mu.Unlock()
	r := sabotageRecord{Record: hostile.Record{Mode: h.mode.String(), Victims: map[string]time.Time{}, LastSent: map[string]time.Time{}},
		Unwrapped: unwrapped, Written: time.Now()}
	if sb != nil {
		r.Record = sb.Record()
	}
	if n != nil {
		r.Peer = n.Host().ID().String()
	}
	b, err := json.Marshal(r)
	if err != nil {
		log.Warnw("saboteur record", "err", err)
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(h.record), ".sabotage-*")
	if err != nil {
		log.Warnw("saboteur record", "err", err)
		return
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if werr == nil && cerr == nil {
		werr = os.Rename(tmp.Name(), h.record)
	}
	if werr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		log.Warnw("saboteur record", "file", h.record, "err", fmt.Errorf("write: %w", errors.Join(werr, cerr)))
	}
}
