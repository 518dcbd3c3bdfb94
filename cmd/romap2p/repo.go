package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// identityFile is the name of the private key file inside a repo directory.
const identityFile = "identity.key"

// defaultRepo is where a node keeps its identity unless told otherwise:
// $ROMAP2P_REPO, or romap2p/ in the user's config directory.
func defaultRepo(getenv func(string) string) string {
	if r := getenv("ROMAP2P_REPO"); r != "" {
		return r
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "romap2p")
	}
	return ".romap2p"
}

// loadIdentity reads the node's key from repo, creating the repo and a fresh
// Ed25519 key on first use, so a node keeps its peer ID across runs.
func loadIdentity(repo string) (crypto.PrivKey, error) {
	path := filepath.Join(repo, identityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("identity %s: %w", path, err)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := os.MkdirAll(repo, 0o700); err != nil {
		return nil, fmt.Errorf("create repo: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode identity: %w", err)
	}
	// Write to a temporary file and rename, so a crash never leaves half a key.
	tmp, err := os.CreateTemp(repo, identityFile+".*")
	if err != nil {
		return nil, fmt.Errorf("write identity: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("write identity: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("write identity: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("write identity: %w", err)
	}
	return k, nil
}
