package hostile

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// Sabotage is what a Saboteur corrupts among the symbols it sends.
type Sabotage int

const (
	// Honest corrupts nothing: an honest peer in the saboteur's place.
	Honest Sabotage = iota
	// CorruptAll corrupts every symbol.
	CorruptAll
	// CorruptSome corrupts one symbol in a hundred.
	CorruptSome
	// CorruptRepair corrupts repair symbols only.
	CorruptRepair
	// CorruptLater sends honest symbols to its children until it has sent
	// Saboteur.After of them, then corrupts every symbol: a relay that
	// turns once children rely on it.
	CorruptLater
)

// Sabotages lists every kind of corruption, Honest first.
var Sabotages = []Sabotage{Honest, CorruptAll, CorruptSome, CorruptRepair, CorruptLater}

// ParseSabotage reads a Sabotage by its name, as String writes it.
func ParseSabotage(s string) (Sabotage, error) {
	for _, m := range Sabotages {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("sabotage %q: want honest, all, 1%%, repair or later", s)
}

func (m Sabotage) String() string {
	switch m {
	case Honest:
		return "honest"
	case CorruptAll:
		return "all"
	case CorruptSome:
		return "1%"
	case CorruptRepair:
		return "repair"
	case CorruptLater:
		return "later"
	}
	return "sabotage(?)"
}

// Saboteur corrupts the symbol frames a node writes to its children,
// keeping every frame well-formed: the first payload byte of a chosen
// symbol is flipped. Wrap its writer around the streams the node feeds
// (a node's shaper hook sees them). It is safe for concurrent use.
type Saboteur struct {
	mode Sabotage
	t    int

	mu      sync.Mutex
	k       func(sbn uint8) uint32
	after   int
	count   int
	bad     int
	victims map[peer.ID]time.Time
	last    map[peer.ID]time.Time
	writes  map[peer.ID][]SymbolWrite
}

// SymbolWrite is one corrupt source symbol written to a peer: its block,
// its ESI and when it was first written to that peer.
type SymbolWrite struct {
	Block uint8     `json:"block"`
	ESI   uint32    `json:"esi"`
	At    time.Time `json:"at"`
}

// MaxWrites bounds the corrupt source symbols recorded per peer: a victim
// blames the first one it reads, one of the earliest written.
const MaxWrites = 256

// NewSaboteur returns a saboteur for symbols of t bytes. It cannot tell
// source from repair symbols until SetBlockSymbols is called; until then
// CorruptRepair corrupts nothing and no victim is recorded.
func NewSaboteur(mode Sabotage, t int) *Saboteur {
	return &Saboteur{mode: mode, t: t, victims: make(map[peer.ID]time.Time), last: make(map[peer.ID]time.Time),
		writes: make(map[peer.ID][]SymbolWrite)}
}

// SetBlockSymbols gives K of every source block (the source symbols are
// ESIs below K).
func (sb *Saboteur) SetBlockSymbols(k func(sbn uint8) uint32) {
	sb.mu.Lock()
	sb.k = k
	sb.mu.Unlock()
}

// SetAfter sets how many symbols CorruptLater sends honestly first.
func (sb *Saboteur) SetAfter(n int) {
	sb.mu.Lock()
	sb.after = n
	sb.mu.Unlock()
}

// Mode returns the saboteur's kind of corruption.
func (sb *Saboteur) Mode() Sabotage { return sb.mode }

// corrupts decides for one symbol sent to a peer.
func (sb *Saboteur) corrupts(to peer.ID, sbn uint8, esi uint32) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	known := sb.k != nil
	source := known && esi < sb.k(sbn)
	sb.count++
	now := time.Now()
	sb.last[to] = now
	bad := false
	switch sb.mode {
	case CorruptAll:
		bad = true
	case CorruptSome:
		bad = sb.count%100 == 0
	case CorruptRepair:
		bad = known && !source
	case CorruptLater:
		bad = sb.count > sb.after
	}
	if bad {
		sb.bad++
		if _, ok := sb.victims[to]; !ok && source {
			sb.victims[to] = now
		}
		if w := sb.writes[to]; source && len(w) < MaxWrites && !slices.ContainsFunc(w, func(x SymbolWrite) bool { return x.Block == sbn && x.ESI == esi }) {
			sb.writes[to] = append(w, SymbolWrite{Block: sbn, ESI: esi, At: now})
		}
	}
	return bad
}

// Victims returns the peers sent a corrupt source symbol, and when the
// first was written.
func (sb *Saboteur) Victims() map[peer.ID]time.Time {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return maps.Clone(sb.victims)
}

// LastSent returns when the last symbol was written to each peer.
func (sb *Saboteur) LastSent() map[peer.ID]time.Time {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return maps.Clone(sb.last)
}

// Counts returns how many symbols passed and how many were corrupted.
func (sb *Saboteur) Counts() (symbols, corrupted int) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.count, sb.bad
}

// Record is what a saboteur did, for a harness to read (as JSON): per peer
// when the first corrupt source symbol and the last symbol were written to
// it, and the first corrupt source symbols written to it (at most 256),
// keyed by peer ID (its string form).
type Record struct {
	Mode      string                   `json:"mode"`
	Symbols   int                      `json:"symbols"`
	Corrupted int                      `json:"corrupted"`
	Victims   map[string]time.Time     `json:"victims"`
	LastSent  map[string]time.Time     `json:"last_sent"`
	Writes    map[string][]SymbolWrite `json:"corrupt_source,omitempty"`
}

// Record returns what the saboteur did so far.
func (sb *Saboteur) Record() Record {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	r := Record{Mode: sb.mode.String(), Symbols: sb.count, Corrupted: sb.bad,
		Victims: make(map[string]time.Time, len(sb.victims)), LastSent: make(map[string]time.Time, len(sb.last))}
	for p, at := range sb.victims {
		r.Victims[p.String()] = at
	}
	for p, at := range sb.last {
		r.LastSent[p.String()] = at
	}
	if len(sb.writes) > 0 {
		r.Writes = make(map[string][]SymbolWrite, len(sb.writes))
		for p, w := range sb.writes {
			r.Writes[p.String()] = slices.Clone(w)
		}
	}
	return r
}

// Writer returns w with the saboteur's corruption applied to the symbols
// written to peer to. An Honest saboteur returns w itself.
func (sb *Saboteur) Writer(to peer.ID, w io.Writer) io.Writer {
	if sb.mode == Honest {
		return w
	}
	return &corruptWriter{sb: sb, to: to, w: w}
}

// corruptWriter parses the frames written to one child and flips the first
// payload byte of the symbols the saboteur chooses. It copies what it is
// given (the node's writer hands it memory shared with other children).
type corruptWriter struct {
	sb  *Saboteur
	to  peer.ID
	w   io.Writer
	buf []byte

	phase   int // 0 frame type, 1 symbol header, 2 symbol payload, 3 control length, 4 control payload
	hdr     [protocol.SymbolHeaderLen - 1]byte
	hdrN    int
	need    int
	first   bool
	corrupt bool
	length  uint64
	shift   uint
}

func (c *corruptWriter) Write(p []byte) (int, error) {
	out := append(c.buf[:0], p...)
	c.buf = out
	for i := 0; i < len(out); {
		switch c.phase {
		case 0:
			if out[i] == protocol.FrameSymbol {
				c.phase, c.hdrN = 1, 0
			} else {
				c.phase, c.length, c.shift = 3, 0, 0
			}
			i++
		case 1:
			c.hdr[c.hdrN] = out[i]
			c.hdrN++
			i++
			if c.hdrN == len(c.hdr) {
				v := binary.BigEndian.Uint32(c.hdr[:])
				c.corrupt = c.sb.corrupts(c.to, uint8(v>>24), v&protocol.MaxESI)
				c.phase, c.need, c.first = 2, c.sb.t, true
			}
		case 2:
			n := min(c.need, len(out)-i)
			if c.corrupt && c.first && n > 0 {
				out[i] ^= 0x5a
				c.first = false
			}
			c.need -= n
			i += n
			if c.need == 0 {
				c.phase = 0
			}
		case 3:
			b := out[i]
			i++
			c.length |= uint64(b&0x7f) << c.shift
			c.shift += 7
			if b&0x80 == 0 {
				c.phase, c.need = 4, int(c.length)
				if c.need == 0 {
					c.phase = 0
				}
			}
		case 4:
			n := min(c.need, len(out)-i)
			c.need -= n
			i += n
			if c.need == 0 {
				c.phase = 0
			}
		}
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
