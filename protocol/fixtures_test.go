package protocol

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"
)

// testPeer returns a deterministic peer ID (a sha2-256 multihash of name).
func testPeer(t testing.TB, name string) peer.ID {
	t.Helper()
	mh, err := multihash.Sum([]byte(name), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromBytes(mh)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testPath(t testing.TB, n int) []peer.ID {
	t.Helper()
	p := make([]peer.ID, n)
	for i := range p {
		p[i] = testPeer(t, fmt.Sprintf("hop-%d", i))
	}
	return p
}

func testAddr(t testing.TB, s string) multiaddr.Multiaddr {
	t.Helper()
	a, err := multiaddr.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// longAddr returns a multiaddr of close to MaxAddrLen bytes.
func longAddr(t testing.TB, i int) multiaddr.Multiaddr {
	t.Helper()
	host := fmt.Sprintf("h%d.", i) + strings.Repeat("a", 240)
	a := testAddr(t, "/dns/"+host+"/tcp/4001")
	for len(a.Bytes())+len(host)+4 <= MaxAddrLen {
		a = a.Encapsulate(testAddr(t, "/dns/"+host))
	}
	if len(a.Bytes()) > MaxAddrLen {
		t.Fatalf("long address of %d bytes", len(a.Bytes()))
	}
	return a
}

func testPeers(t testing.TB, n, addrs int) []peer.AddrInfo {
	t.Helper()
	out := make([]peer.AddrInfo, n)
	for i := range out {
		out[i].ID = testPeer(t, fmt.Sprintf("peer-%d", i))
		for j := range addrs {
			out[i].Addrs = append(out[i].Addrs, testAddr(t, fmt.Sprintf("/ip4/198.18.0.%d/tcp/%d", i+1, 4000+j)))
		}
	}
	return out
}

func testCID(t testing.TB) cid.Cid {
	t.Helper()
	b, err := testManifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	return ManifestCID(b)
}

// testManifest is a fixed manifest: a 1 MiB file in 4 blocks of T = 1024.
func testManifest() *Manifest {
	m := &Manifest{
		Version:    ManifestVersion,
		Size:       1 << 20,
		SymbolSize: 1024,
		SubBlocks:  1,
		Alignment:  4,
		Name:       "example.bin",
	}
	for i := range 4 {
		m.BlockHashes = append(m.BlockHashes, sha256.Sum256([]byte{byte(i)}))
	}
	return m
}
