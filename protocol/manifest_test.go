package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multihash"
)

// goldenManifestCID is the CID of testManifest. If it changes, the manifest
// format changed: bump ManifestVersion and the protocol IDs instead.
const goldenManifestCID = "bafyreialxtcf7izxhb3ck6stgnfce2tnl4aypr52wyhj6ukldzvfwwr5ga"

func TestManifestRoundTrip(t *testing.T) {
	for _, name := range []string{"", "example.bin", "ünïcødé ✓.txt"} {
		m := testManifest()
		m.Name = name
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeManifest(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != m.Name || got.Size != m.Size || got.SymbolSize != m.SymbolSize ||
			got.SubBlocks != m.SubBlocks || got.Alignment != m.Alignment || got.Version != m.Version ||
			len(got.BlockHashes) != len(m.BlockHashes) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
		for i := range m.BlockHashes {
			if got.BlockHashes[i] != m.BlockHashes[i] {
				t.Fatalf("hash %d differs", i)
			}
		}
		again, err := got.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encode differs: %v", err)
		}
		if oti := got.OTI(); oti != (OTI{F: 1 << 20, T: 1024, Z: 4, N: 1, Al: 4}) {
			t.Fatalf("OTI %+v", oti)
		}
	}
}

func TestManifestGoldenCID(t *testing.T) {
	b, err := testManifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	c := ManifestCID(b)
	if c.String() != goldenManifestCID {
		t.Fatalf("CID of the fixed manifest is %s, want %s\nbytes %x", c, goldenManifestCID, b)
	}
	if _, err := VerifyManifest(c, b); err != nil {
		t.Fatal(err)
	}
}

// TestManifestIsDAGCBOR checks the encoding against an independent DAG-CBOR
// implementation: it must decode it and encode it back to the same bytes.
func TestManifestIsDAGCBOR(t *testing.T) {
	m := testManifest()
	m.BlockHashes = make([][32]byte, MaxSourceBlocks)
	m.Size = MaxFileSize
	m.SymbolSize = MaxSymbolSize
	m.Alignment = 1
	m.SubBlocks = 7
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{b, mustEncode(t, testManifest())} {
		nb := basicnode.Prototype.Any.NewBuilder()
		if err := dagcbor.Decode(nb, bytes.NewReader(in)); err != nil {
			t.Fatalf("dagcbor decode: %v", err)
		}
		var out bytes.Buffer
		if err := dagcbor.Encode(nb.Build(), &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("dagcbor re-encodes differently:\n%x\n%x", out.Bytes(), in)
		}
	}
}

func mustEncode(t testing.TB, m *Manifest) []byte {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestManifestLargestFits(t *testing.T) {
	m := testManifest()
	m.Size = MaxFileSize
	m.SymbolSize = MaxSymbolSize
	m.Alignment = 1
	m.SubBlocks = MaxSymbolSize
	m.BlockHashes = make([][32]byte, MaxSourceBlocks)
	m.Name = strings.Repeat("é", MaxNameLen/2) + "x"
	b := mustEncode(t, m)
	if len(b) > MaxManifestSize || len(b) < 9000 {
		t.Fatalf("largest manifest: %d bytes, limit %d", len(b), MaxManifestSize)
	}
	if _, err := DecodeManifest(b); err != nil {
		t.Fatal(err)
	}
}

func TestManifestValidate(t *testing.T) {
	cases := map[string]func(m *Manifest){
		"version 2":             func(m *Manifest) { m.Version = 2 },
		"size 0":                func(m *Manifest) { m.Size = 0 },
		"size over max":         func(m *Manifest) { m.Size = MaxFileSize + 1 },
		"T too small":           func(m *Manifest) { m.SymbolSize = 8; m.Alignment = 1 },
		"Al 0":                  func(m *Manifest) { m.Alignment = 0 },
		"T not multiple of Al":  func(m *Manifest) { m.Alignment = 3 },
		"N 0":                   func(m *Manifest) { m.SubBlocks = 0 },
		"N over T/Al":           func(m *Manifest) { m.SubBlocks = 257 },
		"no blocks":             func(m *Manifest) { m.BlockHashes = nil },
		"257 blocks":            func(m *Manifest) { m.Size = 1 << 30; m.BlockHashes = make([][32]byte, 257) },
		"more blocks than syms": func(m *Manifest) { m.Size = 3 * 1024; m.BlockHashes = make([][32]byte, 4) },
		"block over KMAX":       func(m *Manifest) { m.Size = 4*MaxSourceSymbols*1024 + 1 },
		"name with slash":       func(m *Manifest) { m.Name = "a/b" },
		"name with NUL":         func(m *Manifest) { m.Name = "a\x00b" },
		"name dotdot":           func(m *Manifest) { m.Name = ".." },
		"name too long":         func(m *Manifest) { m.Name = strings.Repeat("a", MaxNameLen+1) },
		"name bad UTF-8":        func(m *Manifest) { m.Name = "a\xffb" },
	}
	for name, mutate := range cases {
		m := testManifest()
		mutate(m)
		if _, err := m.Encode(); err == nil {
			t.Errorf("%s: Encode accepted %+v", name, m)
		}
	}
	// The largest size 4 blocks of KMAX symbols allow is fine.
	m := testManifest()
	m.Size = 4 * MaxSourceSymbols * 1024
	if _, err := m.Encode(); err != nil {
		t.Error(err)
	}
}

func TestSanitizeName(t *testing.T) {
	cases := map[string]string{
		"file.txt":      "file.txt",
		"a/b\\c":        "a_b_c",
		"nul\x00x":      "nul_x",
		"tab\tnl\n":     "tab_nl_",
		"del\x7f":       "del_",
		"bad\xff\xfe":   "bad__",
		"..":            "",
		".":             "",
		"...":           "...",
		"":              "",
		"ok ü ✓":        "ok ü ✓",
		"c1\u0085end":   "c1_end",
		"\uFFFDliteral": "\uFFFDliteral",
	}
	for in, want := range cases {
		if got := SanitizeName(in); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := SanitizeName(strings.Repeat("é", MaxNameLen))
	if len(long) > MaxNameLen || len(long) < MaxNameLen-1 || SanitizeName(long) != long {
		t.Errorf("long name cut to %d bytes", len(long))
	}
}

func TestDecodeManifestSanitizesName(t *testing.T) {
	m := testManifest()
	m.Name = "aaa"
	b := mustEncode(t, m)
	i := bytes.Index(b, []byte("aaa"))
	b[i+1] = '/'
	got, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "a_a" {
		t.Fatalf("name %q, want %q", got.Name, "a_a")
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	good := mustEncode(t, testManifest())
	hexOf := func(s string) []byte { return []byte(s) }
	replace := func(old, new []byte) []byte {
		if !bytes.Contains(good, old) {
			t.Fatalf("%x not in manifest", old)
		}
		return bytes.Replace(bytes.Clone(good), old, new, 1)
	}
	// "size" 0x1a 00100000 (1 MiB as a 4-byte integer).
	sizeKey := append([]byte{0x64}, hexOf("size")...)
	cases := map[string][]byte{
		"empty":          {},
		"not a map":      {0x80},
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"indefinite map": append([]byte{0xbf}, good[1:]...),
		"non-minimal int": replace(append(bytes.Clone(sizeKey), 0x1a, 0, 0x10, 0, 0),
			append(bytes.Clone(sizeKey), 0x1b, 0, 0, 0, 0, 0, 0x10, 0, 0)),
		"unknown key":   replace(sizeKey, append([]byte{0x64}, hexOf("sizf")...)),
		"key order":     replace(sizeKey, append([]byte{0x64}, hexOf("nbme")...)),
		"wrong type":    replace([]byte{0x19, 0x04, 0x00}, []byte{0x42, 0x04, 0x00}),
		"version 2":     replace(append([]byte{0x67}, hexOf("version\x01")...), append([]byte{0x67}, hexOf("version\x02")...)),
		"short hash":    replace([]byte{0x58, 0x20}, []byte{0x58, 0x1f}),
		"too large":     make([]byte, MaxManifestSize+1),
		"oversize name": replace([]byte{0x6b}, []byte{0x79, 0x01, 0x00}),
	}
	m := testManifest()
	m.Name = ""
	noName := mustEncode(t, m)
	cases["empty name"] = append([]byte{0xa7, 0x64, 'n', 'a', 'm', 'e', 0x60}, noName[1:]...)
	cases["five entries"] = append([]byte{0xa5}, noName[1+5+5:]...)
	sizeAt := bytes.Index(good, sizeKey)
	cases["name but no size"] = append(append([]byte{0xa6}, good[1:sizeAt]...), good[sizeAt+10:]...)
	for name, b := range cases {
		if _, err := DecodeManifest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want malformed", name, err)
		}
	}
	// Every truncation fails cleanly.
	for i := range good {
		if _, err := DecodeManifest(good[:i]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", i)
		}
	}
}

func TestVerifyManifest(t *testing.T) {
	b := mustEncode(t, testManifest())
	c := ManifestCID(b)
	if _, err := VerifyManifest(c, b); err != nil {
		t.Fatal(err)
	}
	other := bytes.Clone(b)
	other[len(other)-1] ^= 1
	if _, err := VerifyManifest(c, other); !errors.Is(err, ErrMalformed) {
		t.Errorf("tampered bytes: %v", err)
	}
	sum := sha256.Sum256(b)
	mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	rawCID := cid.NewCidV1(cid.Raw, mh)
	v0 := cid.NewCidV0(mh)
	mh512, _ := multihash.Sum(b, multihash.SHA2_512, -1)
	sha512CID := cid.NewCidV1(cid.DagCBOR, mh512)
	for name, bad := range map[string]cid.Cid{"raw codec": rawCID, "CIDv0": v0, "sha2-512": sha512CID, "undefined": cid.Undef} {
		_, err := VerifyManifest(bad, b)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if bad.Defined() && !strings.Contains(err.Error(), "want") {
			t.Errorf("%s: unclear error %v", name, err)
		}
	}
	if got := hex.EncodeToString(c.Bytes()[:4]); got != "01711220" {
		t.Errorf("CID prefix %s, want 01711220 (v1, dag-cbor, sha2-256, 32 bytes)", got)
	}
}

func TestManifestBlockHash(t *testing.T) {
	m := testManifest()
	m.BlockHash = BlockHashBLAKE3
	b := mustEncode(t, m)
	// The key comes first ("hash" sorts before "name") and the map grows
	// by one entry.
	if b[0] != 0xa8 || !bytes.HasPrefix(b[1:], []byte{0x64, 'h', 'a', 's', 'h', 0x18, 0x1e}) {
		t.Fatalf("blake3 manifest starts %x", b[:8])
	}
	got, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.BlockHash != BlockHashBLAKE3 {
		t.Fatalf("decoded block hash 0x%x", got.BlockHash)
	}
	// The same fields with sha2-256, and sha2-256 written as 0, encode
	// alike and without the key.
	m.BlockHash = BlockHashSHA256
	a := mustEncode(t, m)
	m.BlockHash = 0
	if !bytes.Equal(a, mustEncode(t, m)) || bytes.Contains(a, []byte("hash")) {
		t.Fatal("sha2-256 manifest names its hash function")
	}
	if bytes.Equal(a, b) {
		t.Fatal("hash function not part of the encoding")
	}
	// Anything else is rejected, also sha2-256 written out.
	for _, code := range []byte{0x12, 0x13} {
		bad := bytes.Replace(bytes.Clone(b), []byte{0x18, 0x1e}, []byte{0x18, code}, 1)
		if _, err := DecodeManifest(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("hash 0x%x: err = %v, want malformed", code, err)
		}
	}
	m.BlockHash = 0x13
	if _, err := m.Encode(); err == nil {
		t.Error("encoded a manifest with an unknown hash function")
	}
	// And it is still DAG-CBOR.
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(b)); err != nil {
		t.Fatalf("dagcbor decode: %v", err)
	}
}

func TestSumBlock(t *testing.T) {
	data := []byte("abc")
	// Published digests of "abc".
	want := map[uint64]string{
		BlockHashSHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		BlockHashBLAKE3: "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
	}
	for code, hexSum := range want {
		m := testManifest()
		m.BlockHash = code
		got := m.SumBlock(data)
		if hex.EncodeToString(got[:]) != hexSum {
			t.Errorf("0x%x: SumBlock = %x, want %s", code, got, hexSum)
		}
		h := m.NewBlockHasher()
		h.Write(data[:1])
		h.Write(data[1:])
		if s := h.Sum(nil); !bytes.Equal(s, got[:]) {
			t.Errorf("0x%x: streaming hash %x differs from SumBlock", code, s)
		}
	}
}
