package hostile

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/romap2p/romap2p/protocol"
)

func TestParseSabotage(t *testing.T) {
	for _, m := range Sabotages {
		got, err := ParseSabotage(m.String())
		if err != nil || got != m {
			t.Errorf("ParseSabotage(%q) = %v, %v", m.String(), got, err)
		}
	}
	for _, bad := range []string{"", "ALL", "2%", "sabotage(?)"} {
		if _, err := ParseSabotage(bad); err == nil {
			t.Errorf("ParseSabotage(%q) accepted", bad)
		}
	}
}

// TestRecord writes one source and one repair symbol through a CorruptAll
// saboteur and reads its record back from JSON.
func TestRecord(t *testing.T) {
	const T = 16
	sb := NewSaboteur(CorruptAll, T)
	sb.SetBlockSymbols(func(uint8) uint32 { return 4 })
	to := peer.ID("victim")
	var out bytes.Buffer
	w := sb.Writer(to, &out)
	frame := func(esi uint32) []byte {
		b := make([]byte, protocol.SymbolHeaderLen+T)
		protocol.PutSymbolHeader(b, 0, esi)
		return b
	}
	for _, esi := range []uint32{7, 1, 1} { // repair, then source twice
		if _, err := w.Write(frame(esi)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.Bytes()[protocol.SymbolHeaderLen]; got == 0 {
		t.Error("the repair symbol went out unchanged")
	}
	b, err := json.Marshal(sb.Record())
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Mode != "all" || r.Symbols != 3 || r.Corrupted != 3 {
		t.Errorf("record %s", b)
	}
	first, ok := r.Victims[to.String()]
	if !ok || len(r.Victims) != 1 {
		t.Fatalf("victims %v, want %s", r.Victims, to)
	}
	if last := r.LastSent[to.String()]; last.Before(first) {
		t.Errorf("last sent %v before the first corrupt source symbol %v", last, first)
	}
	// The source symbol is listed once, with its first write; the repair
	// symbol not at all.
	ws := r.Writes[to.String()]
	if len(ws) != 1 || ws[0].Block != 0 || ws[0].ESI != 1 || !ws[0].At.Equal(first) {
		t.Errorf("corrupt source symbols %+v, want block 0 ESI 1 at %v", ws, first)
	}
}
