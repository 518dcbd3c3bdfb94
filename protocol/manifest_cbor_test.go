package protocol

import (
	"crypto/sha256"
	"testing"
)

// cborGoldenManifests are manifests whose CIDs were taken from the
// hand-written encoder this package used before the CBOR library: the
// library must give every existing manifest the same bytes, hence the same
// CID.
func cborGoldenManifests() map[string]*Manifest {
	out := map[string]*Manifest{}
	base := func(blocks int) *Manifest {
		m := testManifest()
		m.BlockHashes = nil
		for i := range blocks {
			m.BlockHashes = append(m.BlockHashes, sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
		}
		return m
	}
	m := base(4)
	m.Name = ""
	out["sha256 without name"] = m
	m = base(4)
	m.BlockHash = BlockHashBLAKE3
	out["blake3"] = m
	m = base(MaxSourceBlocks)
	m.Size, m.SymbolSize, m.SubBlocks, m.Alignment = 255<<30, 65532, 9, 4
	m.Name = "ünïcødé ✓ and a rather longer name that needs a two-byte length head.iso"
	m.BlockHash = BlockHashBLAKE3
	out["largest"] = m
	m = base(1)
	m.Size, m.SymbolSize, m.Alignment, m.SubBlocks = 1, 16, 1, 1
	m.Name = "x"
	out["smallest"] = m
	m = base(24)
	m.Size, m.SymbolSize = 23<<20, 256
	out["24 blocks (one-byte array head)"] = m
	return out
}

var cborGoldenCIDs = map[string]string{
	"smallest":                        "bafyreicujx4i2qanqbvr6wcuvguw7jf7stzl4e7fmiews7hot35oaqr66y",
	"24 blocks (one-byte array head)": "bafyreid22y6po6o6kadq5yvdw6fnkm6ljeozd5hnhvfgm4iouynmsbkqzm",
	"sha256 without name":             "bafyreigiitbugor5hadk4bh35qnfp46ldjkkua644skvg7ieshzylubz2y",
	"blake3":                          "bafyreicmka257b7acjf623fjiwsj6ggseum75tgoxpvgjkn4i4kqdnxxny",
	"largest":                         "bafyreibcweoln4p76dgp2v74icfso27cj55y37y4juvbiexletye2g7f4u",
}

func TestManifestCBORGoldenCIDs(t *testing.T) {
	for name, m := range cborGoldenManifests() {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := ManifestCID(b).String()
		if want, ok := cborGoldenCIDs[name]; !ok || got != want {
			t.Errorf("%s: CID %s, want %s", name, got, want)
		}
		d, err := DecodeManifest(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if again, err := d.Encode(); err != nil || ManifestCID(again).String() != got {
			t.Errorf("%s: decode and encode again changed the CID (%v)", name, err)
		}
	}
}
