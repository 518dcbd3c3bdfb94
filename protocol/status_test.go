package protocol

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func testStatus(t testing.TB) *Status {
	path := testPath(t, 3)
	return &Status{
		Role:        RoleRelaying,
		Have:        BlockSet{0x0f},
		StripeCount: 4,
		Stripes: []StripeStatus{
			{Index: 0, Width: 12_500_000, Depth: 2, Path: path, Parent: path[1], Children: 3, MaxChildren: 8},
			{Index: 3, Width: 1_000_000, Depth: 5, Path: testPath(t, 6), Parent: testPeer(t, "hop-4"), MaxChildren: 8},
		},
		Peers:        testPeers(t, 3, 2),
		UploadRate:   40_000_000,
		DownloadRate: 12_000_000,
	}
}

func TestStatusRoundTrip(t *testing.T) {
	for _, s := range []*Status{
		testStatus(t),
		{Role: RoleNone},
		{Role: RoleSource, StripeCount: 1, Stripes: []StripeStatus{{Width: WidthUnbounded, Path: testPath(t, 1), MaxChildren: MaxChildren}}},
	} {
		var buf bytes.Buffer
		if err := WriteStatus(&buf, s); err != nil {
			t.Fatal(err)
		}
		got, err := ReadStatus(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("got %+v\nwant %+v", got, s)
		}
	}
}

func TestStatusLargestFits(t *testing.T) {
	s := &Status{Role: RoleRelaying, StripeCount: MaxStripes, UploadRate: math.MaxUint64, DownloadRate: math.MaxUint64}
	for i := range MaxStripes {
		s.Stripes = append(s.Stripes, StripeStatus{
			Index: i, Width: math.MaxUint64, Depth: MaxPathLen, Path: testPath(t, MaxPathLen),
			Parent: testPeer(t, "p"), Children: MaxChildren, MaxChildren: MaxChildren,
		})
	}
	for i := range MaxPeers {
		ai := peer.AddrInfo{ID: testPeer(t, string(rune('a'+i)))}
		for j := range MaxAddrs {
			ai.Addrs = append(ai.Addrs, longAddr(t, j))
		}
		s.Peers = append(s.Peers, ai)
	}
	var buf bytes.Buffer
	if err := WriteStatus(&buf, s); err != nil {
		t.Fatal(err)
	}
	t.Logf("largest status: %d bytes", buf.Len())
	if _, err := ReadStatus(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestStatusRejects(t *testing.T) {
	mut := map[string]func(s *Status){
		"stripe count 65":    func(s *Status) { s.StripeCount = MaxStripes + 1 },
		"more stripes":       func(s *Status) { s.StripeCount = 1 },
		"index out of range": func(s *Status) { s.Stripes[1].Index = 4 },
		"index order":        func(s *Status) { s.Stripes[0].Index = 3 },
		"depth":              func(s *Status) { s.Stripes[0].Depth = MaxPathLen + 1 },
		"children":           func(s *Status) { s.Stripes[0].Children = MaxChildren + 1 },
		"max children":       func(s *Status) { s.Stripes[0].MaxChildren = -1 },
		"path":               func(s *Status) { s.Stripes[0].Path = testPath(t, MaxPathLen+1) },
		"parent":             func(s *Status) { s.Stripes[0].Parent = "bogus" },
		"peers":              func(s *Status) { s.Peers = testPeers(t, MaxPeers+1, 0) },
	}
	for name, f := range mut {
		s := testStatus(t)
		f(s)
		if _, err := s.Append(nil); err == nil {
			t.Errorf("%s: Append accepted", name)
		}
	}
	good, err := testStatus(t).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range good {
		if _, err := DecodeStatus(good[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
	hdr := append([]byte{byte(RoleRelaying)}, make([]byte, 32)...)
	bad := map[string][]byte{
		"trailing":         append(bytes.Clone(good), 0),
		"stripe count 65":  append(bytes.Clone(hdr), MaxStripes+1),
		"stripes > k":      append(bytes.Clone(hdr), 1, 2),
		"index >= k":       append(bytes.Clone(hdr), 2, 1, 2, 0, 0, 0, 0, 0, 0),
		"repeated index":   append(bytes.Clone(hdr), 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"depth 65":         append(bytes.Clone(hdr), 1, 1, 0, 0, MaxPathLen+1),
		"children > limit": append(bytes.Clone(hdr), 1, 1, 0, 0, 0, 0, 0, 0x81, 0x80, 0x04),
	}
	for name, b := range bad {
		if _, err := DecodeStatus(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
	// A minimal valid body, to be sure the cases above fail for their reason.
	ok := append(bytes.Clone(hdr), 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	if _, err := DecodeStatus(ok); err != nil {
		t.Fatalf("minimal status: %v", err)
	}
}
