package protocol

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

func TestSubscribeRoundTrip(t *testing.T) {
	c := testCID(t)
	for _, s := range []*Subscribe{
		{CID: c, Stripes: 1, Stripe: 0},
		{CID: c, Stripes: MaxStripes, Stripe: MaxStripes - 1, Probe: true, Finished: BlockSet{0xff, 1, 31: 0x80}},
	} {
		var buf bytes.Buffer
		if err := WriteSubscribe(&buf, s); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSubscribe(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("got %+v, want %+v", got, s)
		}
	}
}

func TestSubscribeRejects(t *testing.T) {
	c := testCID(t)
	for _, s := range []*Subscribe{
		{CID: c, Stripes: 0},
		{CID: c, Stripes: MaxStripes + 1},
		{CID: c, Stripes: 2, Stripe: 2},
		{CID: c, Stripes: 2, Stripe: -1},
		{Stripes: 1},
	} {
		if _, err := s.Append(nil); err == nil {
			t.Errorf("Append accepted %+v", s)
		}
	}
	good, err := (&Subscribe{CID: c, Stripes: 4, Stripe: 3}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	cidLen := 1 + len(c.Bytes())
	mutate := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	cases := map[string][]byte{
		"k 0":           mutate(cidLen, 0),
		"k 65":          mutate(cidLen, 65),
		"i >= k":        mutate(cidLen+1, 4),
		"unknown flags": mutate(cidLen+2, 2),
		"bad CID":       mutate(2, 0x55),
		"trailing":      append(bytes.Clone(good), 0),
	}
	for i := range good {
		cases["prefix"+string(rune('A'+i%26))+strings.Repeat("'", i/26)] = good[:i]
	}
	for name, b := range cases {
		if _, err := DecodeSubscribe(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
}

func TestSubscribeReplyRoundTrip(t *testing.T) {
	for _, s := range []*SubscribeReply{
		{Accepted: true, Path: testPath(t, 3), Width: 12_500_000, Depth: 2},
		{Accepted: true, Path: testPath(t, 1), Width: WidthUnbounded},
		{Reason: "full", Redirect: testPeers(t, MaxPeers, MaxAddrs), Path: testPath(t, MaxPathLen), Width: math.MaxUint64 - 1, Depth: MaxPathLen},
	} {
		var buf bytes.Buffer
		if err := WriteSubscribeReply(&buf, s); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSubscribeReply(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("got %+v\nwant %+v", got, s)
		}
	}
}

func TestSubscribeReplyLargestFits(t *testing.T) {
	s := &SubscribeReply{Reason: strings.Repeat("r", MaxReasonLen), Path: testPath(t, MaxPathLen), Width: math.MaxUint64, Depth: MaxPathLen}
	for i := range MaxPeers {
		ai := peer.AddrInfo{ID: testPeer(t, string(rune('a'+i)))}
		for j := range MaxAddrs {
			ai.Addrs = append(ai.Addrs, longAddr(t, j))
		}
		s.Redirect = append(s.Redirect, ai)
	}
	var buf bytes.Buffer
	if err := WriteSubscribeReply(&buf, s); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSubscribeReply(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribeReplyRejects(t *testing.T) {
	tooManyAddrs := testPeers(t, 1, MaxAddrs+1)
	for name, s := range map[string]*SubscribeReply{
		"long reason":    {Reason: strings.Repeat("r", MaxReasonLen+1)},
		"bad UTF-8":      {Reason: "\xff"},
		"too many peers": {Redirect: testPeers(t, MaxPeers+1, 0)},
		"too many addrs": {Redirect: tooManyAddrs},
		"long path":      {Path: testPath(t, MaxPathLen+1)},
		"bad peer ID":    {Path: []peer.ID{"not a multihash"}},
		"empty peer ID":  {Path: []peer.ID{""}},
		"negative depth": {Depth: -1},
		"depth over max": {Depth: MaxPathLen + 1},
		"nil address":    {Redirect: []peer.AddrInfo{{ID: testPeer(t, "x"), Addrs: []multiaddr.Multiaddr{nil}}}},
	} {
		if _, err := s.Append(nil); err == nil {
			t.Errorf("%s: Append accepted", name)
		}
	}
	good, err := (&SubscribeReply{Accepted: true, Redirect: testPeers(t, 1, 1), Path: testPath(t, 1), Width: 5, Depth: 1}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range good {
		if _, err := DecodeSubscribeReply(good[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
	bad := map[string][]byte{
		"flags":            {2, 0, 0, 0, 0, 0},
		"reason too long":  append([]byte{0}, appendBytes(nil, make([]byte, MaxReasonLen+1))...),
		"reason bad UTF-8": {0, 1, 0xff, 0, 0, 0, 0},
		"17 redirects":     {0, 0, MaxPeers + 1},
		"65 hops":          {0, 0, 0, MaxPathLen + 1},
		"depth 65":         {0, 0, 0, 0, 0, MaxPathLen + 1},
		"trailing":         {0, 0, 0, 0, 0, 0, 0},
		"empty peer":       {0, 0, 0, 1, 0, 0, 0},
		"bad peer":         {0, 0, 0, 1, 2, 0x12, 0x20, 0, 0},
	}
	for name, b := range bad {
		if _, err := DecodeSubscribeReply(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
}
