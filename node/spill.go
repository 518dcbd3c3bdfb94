package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/libp2p/go-libp2p/core/network"
	"io"
	"io/fs"
	"maps"
	"math"
	bits64 "math/bits"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

// spillRecordHeader is the size of a spill record's header: the ESI as a
// big-endian uint32. The symbol's T bytes follow.
const spillRecordHeader = 4

// spillStore keeps the received symbols of unfinished blocks on disk, one
// append-only file per block, so a receiver's memory stays bounded whatever
// the file size and an interrupted download resumes with what it had.
// Symbols are first kept in memory, within a budget shared by all blocks: a
// block that decodes before the budget runs out never touches the disk, and
// what is still in memory when the download stops is written out for the
// resume.
type spillStore struct {
	dir    string
	t      int
	blocks []*spillBlock
	// budget is the memory not yet handed out, in bytes: what blocks hold
	// and what waits in free never exceed the budget given to openSpill.
	budget atomic.Int64

	// Memory of finished blocks, kept for the next blocks: a fresh buffer
	// costs a page fault per 4 KiB as it fills (about 0.6 ms per MiB
	// here), as much as the copying itself.
	freeMu sync.Mutex
	free   [][]byte

	// mem, when set, must grant every fresh buffer too (the resource
	// manager's limits): refused, the symbols go to disk.
	mem *sessionMemory
}

// takeMem returns a buffer of capacity at least want, recycled when one
// fits, or nil when the budget cannot hold it.
func (s *spillStore) takeMem(want int64) []byte {
	s.freeMu.Lock()
	defer s.freeMu.Unlock()
	for i, m := range s.free {
		if int64(cap(m)) >= want && int64(cap(m)) <= want+want/4 {
			s.free = append(s.free[:i], s.free[i+1:]...)
			return m[:0]
		}
	}
	// Nothing fits: make room, dropping kept buffers if need be.
	for s.budget.Add(-want) < 0 {
		s.budget.Add(want)
		if len(s.free) == 0 {
			return nil
		}
		s.budget.Add(int64(cap(s.free[0])))
		s.mem.release(cap(s.free[0]))
		s.free = s.free[1:]
	}
	if err := s.mem.reserve(int(want), network.ReservationPriorityLow); err != nil {
		s.budget.Add(want)
		log.Debugw("symbols go to disk", "err", err)
		return nil
	}
	return make([]byte, 0, want)
}

// giveMem keeps a finished block's buffer for reuse; it stays counted
// against the budget.
func (s *spillStore) giveMem(m []byte) {
	if cap(m) == 0 {
		return
	}
	s.freeMu.Lock()
	defer s.freeMu.Unlock()
	s.free = append(s.free, m[:0])
}

// spillBlock is one block's spill file. The sink appends to it; a decoder
// reads it back. mu serialises the two.
type spillBlock struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	w        *bufio.Writer
	n        int    // records held: fileN in the file, the rest in mem
	fileN    int    // records in the file (flushed or buffered)
	mem      []byte // records kept in memory (budget reserved: cap)
	memTried bool   // whether memory was asked for
	// img holds source symbols in place (ESI i at i*T), so a block that
	// gets every one of them is its own image: nothing to decode or copy.
	img     []byte
	imgBits []uint64
	imgN    int
	k       int     // the block's K
	sys     int     // records of source symbols (ESI < K)
	seen    *esiSet // ESIs held, to drop duplicates
	// from names the sender of each repair symbol received in this run
	// (records read back from disk have none): a repair symbol that proves
	// wrong blames it.
	from  map[uint32]peer.ID
	hdr   [spillRecordHeader]byte
	error error
}

// openSpill opens (or creates) the spill directory for blocks blocks of
// symbol size t. Existing spill files are scanned so their symbols count
// again; a torn last record (a crash mid-write) is cut off. Blocks marked done
// get no spill file.
func openSpill(dir string, t int, ks []int, done func(sbn int) bool, memBytes int64) (*spillStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spill directory: %w", err)
	}
	s := &spillStore{dir: dir, t: t, blocks: make([]*spillBlock, len(ks))}
	s.budget.Store(memBytes)
	for sbn := range ks {
		b := &spillBlock{k: ks[sbn], path: filepath.Join(dir, fmt.Sprintf("block-%03d.sym", sbn))}
		s.blocks[sbn] = b
		if done(sbn) {
			_ = os.Remove(b.path)
			continue
		}
		if err := b.open(t, ks[sbn]); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (b *spillBlock) open(t, k int) error {
	f, err := os.OpenFile(b.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("spill file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("spill file: %w", err)
	}
	rec := int64(spillRecordHeader + t)
	whole := st.Size() / rec
	if st.Size()%rec != 0 {
		if err := f.Truncate(whole * rec); err != nil {
			f.Close()
			return fmt.Errorf("spill file: cut torn record: %w", err)
		}
	}
	b.seen = newESISet(k)
	var hdr [spillRecordHeader]byte
	kept := int64(0)
	buf := make([]byte, rec)
	for i := int64(0); i < whole; i++ {
		if _, err := f.ReadAt(hdr[:], i*rec); err != nil {
			f.Close()
			return fmt.Errorf("spill file: scan: %w", err)
		}
		esi := binary.BigEndian.Uint32(hdr[:])
		if esi > protocol.MaxESI || b.seen.has(esi) {
			// Not a symbol this node would have kept (a damaged record):
			// dropped, the records after it move up.
			log.Warnw("spill file: dropping a bad record", "file", b.path, "record", i, "esi", esi)
			continue
		}
		b.seen.add(esi)
		if int(esi) < k {
			b.sys++
		}
		if kept != i {
			if _, err := f.ReadAt(buf, i*rec); err != nil {
				f.Close()
				return fmt.Errorf("spill file: scan: %w", err)
			}
			if _, err := f.WriteAt(buf, kept*rec); err != nil {
				f.Close()
				return fmt.Errorf("spill file: compact: %w", err)
			}
		}
		kept++
	}
	if kept != whole {
		if err := f.Truncate(kept * rec); err != nil {
			f.Close()
			return fmt.Errorf("spill file: compact: %w", err)
		}
	}
	if _, err := f.Seek(kept*rec, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("spill file: %w", err)
	}
	b.f = f
	b.w = bufio.NewWriterSize(f, 64<<10)
	b.n, b.fileN = int(kept), int(kept)
	return nil
}

// markSeen records that symbol (sbn, esi) has arrived and reports whether it
// is new. The receive path calls it before a symbol enters the ring, so
// duplicates are neither stored nor forwarded.
func (s *spillStore) markSeen(sbn int, esi uint32) bool {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		return false // finished and removed
	}
	return b.seen.add(esi)
}

// isSeen reports whether symbol (sbn, esi) is held already (or its block
// is finished), without recording it: a symbol is checked before markSeen,
// so that a wrong copy does not shut out a right one.
func (s *spillStore) isSeen(sbn int, esi uint32) bool {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen == nil || b.seen.has(esi)
}

// add appends a symbol (already marked seen) to block sbn's spill file and
// returns the number of symbols the file holds.
func (s *spillStore) add(sbn int, esi uint32, sym []byte) (int, error) {
	return s.addFrom(sbn, esi, sym, "")
}

// addFrom is add for a repair symbol received from peer from.
func (s *spillStore) addFrom(sbn int, esi uint32, sym []byte, from peer.ID) (int, error) {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return 0, nil // finished and removed
	}
	if b.error != nil {
		return b.n, b.error
	}
	b.noteFromLocked(esi, from)
	return s.addLocked(sbn, b, esi, sym)
}

// noteFromLocked records the sender of repair symbol esi (b.mu held);
// source symbols and unnamed senders are not recorded.
func (b *spillBlock) noteFromLocked(esi uint32, from peer.ID) {
	if from == "" || int(esi) < b.k {
		return
	}
	if b.from == nil {
		b.from = make(map[uint32]peer.ID)
	}
	b.from[esi] = from
}

// addLocked stores one record (b.mu held).
func (s *spillStore) addLocked(sbn int, b *spillBlock, esi uint32, sym []byte) (int, error) {
	binary.BigEndian.PutUint32(b.hdr[:], esi)
	if int(esi) < b.k {
		b.sys++
	}
	rec := spillRecordHeader + len(sym)
	if b.mem == nil && b.fileN == 0 && !b.memTried {
		// Reserve room for the block's K source symbols in place and a
		// few repair symbols at once, so appending never copies.
		b.memTried = true
		if img := s.takeMem(int64(b.k * len(sym))); img != nil {
			b.img = img[:b.k*len(sym)]
			b.imgBits = make([]uint64, (b.k+63)/64)
			b.mem = s.takeMem(int64((b.k/32 + 4) * rec))
		}
	}
	if int(esi) < b.k && b.img != nil {
		copy(b.img[int(esi)*len(sym):], sym)
		b.imgBits[esi>>6] |= 1 << (esi & 63)
		b.imgN++
		b.n++
		return b.n, nil
	}
	if len(b.mem)+rec <= cap(b.mem) {
		b.mem = append(append(b.mem, b.hdr[:]...), sym...)
		b.n++
		return b.n, nil
	}
	if _, err := b.w.Write(b.hdr[:]); err != nil {
		b.error = fmt.Errorf("spill block %d: %w", sbn, err)
		return b.n, b.error
	}
	if _, err := b.w.Write(sym); err != nil {
		b.error = fmt.Errorf("spill block %d: %w", sbn, err)
		return b.n, b.error
	}
	b.n++
	b.fileN++
	return b.n, nil
}

// held returns, for block sbn, the bitmap of a held frame for stripe
// (k, i): bit j set when source symbol i + j*k has arrived. It reports
// false when none has (or the block is finished).
func (s *spillStore) held(sbn, k, i int) (protocol.Held, bool) {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	h := protocol.Held{SBN: uint8(sbn)}
	if b.seen == nil || i >= b.k {
		return h, false
	}
	h.N = (b.k - i + k - 1) / k
	h.Bits = make([]byte, (h.N+7)/8)
	some := false
	for j := 0; j < h.N; j++ {
		if b.seen.has(uint32(i + j*k)) {
			h.Bits[j>>3] |= 1 << (j & 7)
			some = true
		}
	}
	return h, some
}

// seenCount returns the number of distinct symbols of block sbn that have
// arrived (markSeen), some of which the sink may not have stored yet.
func (s *spillStore) seenCount(sbn int) int {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		return b.k
	}
	return b.seen.n
}

// onDisk reports whether block sbn has records in its spill file.
func (s *spillStore) onDisk(sbn int) bool {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fileN > 0
}

// hasRepairFrom reports whether block sbn holds repair symbols received
// from peers in this run.
func (s *spillStore) hasRepairFrom(sbn int) bool {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.from) > 0
}

// sourceCount returns the number of block sbn's source symbols (ESI < K)
// held.
func (s *spillStore) sourceCount(sbn int) int {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sys
}

// count returns the number of distinct symbols held for block sbn.
func (s *spillStore) count(sbn int) int {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// image returns block sbn's source symbols in place, K*T bytes, when every
// one of them is held in memory: the block itself, padded. It stays valid
// until finish or rewrite (which only the decoder calls).
func (s *spillStore) image(sbn int) ([]byte, bool) {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil || b.img == nil || b.imgN < b.k {
		return nil, false
	}
	return b.img, true
}

// read calls fn with up to max symbols of block sbn: the source symbols
// held in place, then the records in the order they were received. The
// symbol slice is only valid during the call. from is the sender of a
// repair symbol received in this run ("" otherwise), and disk is set for
// records read back from the spill file.
func (s *spillStore) read(sbn, max int, fn func(esi uint32, sym []byte, from peer.ID, disk bool) error) error {
	b := s.blocks[sbn]
	b.mu.Lock()
	if b.f == nil {
		b.mu.Unlock()
		return errors.New("block already finished")
	}
	if err := b.w.Flush(); err != nil {
		b.mu.Unlock()
		return fmt.Errorf("spill block %d: flush: %w", sbn, err)
	}
	rec := spillRecordHeader + s.t
	bits := slices.Clone(b.imgBits)
	max -= min(b.imgN, max)
	n := min(b.fileN, max)
	inMem := b.mem[:min(len(b.mem)/rec, max-n)*rec]
	f, img := b.f, b.img
	from := maps.Clone(b.from)
	b.mu.Unlock()

	// Symbols already held are never rewritten (the decoder that reads
	// them is the one that would finish or rewrite the block), so
	// they can be read unlocked.
	for w, word := range bits {
		for ; word != 0; word &= word - 1 {
			esi := w*64 + bits64.TrailingZeros64(word)
			if err := fn(uint32(esi), img[esi*s.t:(esi+1)*s.t], "", false); err != nil {
				return err
			}
		}
	}
	for r := inMem; len(r) > 0; r = r[rec:] {
		esi := binary.BigEndian.Uint32(r[:spillRecordHeader])
		if err := fn(esi, r[spillRecordHeader:rec], from[esi], false); err != nil {
			return err
		}
	}
	const batch = 64
	buf := make([]byte, batch*rec)
	for i := 0; i < n; i += batch {
		m := min(batch, n-i)
		if _, err := f.ReadAt(buf[:m*rec], int64(i)*int64(rec)); err != nil {
			return fmt.Errorf("spill block %d: read: %w", sbn, err)
		}
		for j := 0; j < m; j++ {
			r := buf[j*rec : (j+1)*rec]
			esi := binary.BigEndian.Uint32(r[:spillRecordHeader])
			if err := fn(esi, r[spillRecordHeader:], from[esi], true); err != nil {
				return err
			}
		}
	}
	return nil
}

// rewrite keeps only the records of block sbn for which keep returns true
// (arguments as for read) and forgets the others: their ESIs may arrive
// again. Only the decoder calls it.
func (s *spillStore) rewrite(sbn int, keep func(esi uint32, sym []byte, from peer.ID, disk bool) bool) error {
	type record struct {
		esi  uint32
		from peer.ID
	}
	var recs []record
	var data []byte
	err := s.read(sbn, math.MaxInt, func(esi uint32, sym []byte, from peer.ID, disk bool) error {
		if keep(esi, sym, from, disk) {
			recs = append(recs, record{esi, from})
			data = append(data, sym...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return nil
	}
	// Symbols that arrived since the read are forgotten with the others
	// left out: their ESIs are open again.
	if err := b.resetLocked(); err != nil {
		return fmt.Errorf("spill block %d: %w", sbn, err)
	}
	for i, r := range recs {
		b.seen.add(r.esi)
		b.noteFromLocked(r.esi, r.from)
		if _, err := s.addLocked(sbn, b, r.esi, data[i*s.t:(i+1)*s.t]); err != nil {
			return err
		}
	}
	return nil
}

// finish drops block sbn's spill file: the block is decoded and verified.
func (s *spillStore) finish(sbn int) {
	b := s.blocks[sbn]
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return
	}
	_ = b.f.Close()
	_ = os.Remove(b.path)
	s.giveMem(b.mem)
	s.giveMem(b.img)
	b.f, b.w, b.seen, b.mem, b.img, b.imgBits, b.from = nil, nil, nil, nil, nil, nil, nil
}

// resetLocked empties the block's records (b.mu held).
func (b *spillBlock) resetLocked() error {
	b.w.Reset(b.f)
	if err := b.f.Truncate(0); err != nil {
		return err
	}
	if _, err := b.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	b.seen.reset()
	b.mem = b.mem[:0] // keep the reservation for the new attempt
	clear(b.imgBits)
	clear(b.from)
	b.n, b.fileN, b.sys, b.imgN = 0, 0, 0, 0
	return nil
}

// close flushes and closes every spill file, keeping them for a resume.
func (s *spillStore) close() error {
	var errs []error
	for _, b := range s.blocks {
		if b == nil {
			continue
		}
		b.mu.Lock()
		if b.f != nil {
			// Keep the symbols held in memory for a resume.
			for w, word := range b.imgBits {
				for ; word != 0; word &= word - 1 {
					esi := w*64 + bits64.TrailingZeros64(word)
					binary.BigEndian.PutUint32(b.hdr[:], uint32(esi))
					if _, err := b.w.Write(b.hdr[:]); err != nil {
						errs = append(errs, err)
					}
					if _, err := b.w.Write(b.img[esi*s.t : (esi+1)*s.t]); err != nil {
						errs = append(errs, err)
					}
				}
			}
			if _, err := b.w.Write(b.mem); err != nil {
				errs = append(errs, err)
			}
			s.budget.Add(int64(cap(b.mem) + cap(b.img)))
			b.mem, b.img, b.imgBits, b.imgN = nil, nil, nil, 0
			if err := b.w.Flush(); err != nil {
				errs = append(errs, err)
			}
			if err := b.f.Close(); err != nil {
				errs = append(errs, err)
			}
			b.f = nil
		}
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

// remove deletes the spill directory (after a complete, verified download).
func (s *spillStore) remove() error {
	if err := s.close(); err != nil {
		return err
	}
	if err := os.RemoveAll(s.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove spill directory: %w", err)
	}
	return nil
}

// esiSet is a set of ESIs: a bitmap for the source symbols and the repair
// symbols just above them (what the original source sends), a map for the
// rest (relays and complete peers count from far up the ESI space).
type esiSet struct {
	bits []uint64
	more map[uint32]struct{}
	n    int
}

func newESISet(k int) *esiSet {
	return &esiSet{bits: make([]uint64, (k+k/2+63)/64)}
}

// add inserts esi and reports whether it was new.
func (e *esiSet) add(esi uint32) bool {
	if w := int(esi >> 6); w < len(e.bits) {
		m := uint64(1) << (esi & 63)
		if e.bits[w]&m != 0 {
			return false
		}
		e.bits[w] |= m
		e.n++
		return true
	}
	if _, dup := e.more[esi]; dup {
		return false
	}
	if e.more == nil {
		e.more = make(map[uint32]struct{})
	}
	e.more[esi] = struct{}{}
	e.n++
	return true
}

// has reports whether esi is in the set.
func (e *esiSet) has(esi uint32) bool {
	if w := int(esi >> 6); w < len(e.bits) {
		return e.bits[w]&(1<<(esi&63)) != 0
	}
	_, ok := e.more[esi]
	return ok
}

// reset empties the set.
func (e *esiSet) reset() {
	clear(e.bits)
	clear(e.more)
	e.n = 0
}
