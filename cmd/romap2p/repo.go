package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofrs/flock"

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

// Files of a repo besides the identity.
const (
	configFile  = "config.json"
	lockFile    = "repo.lock"
	servingFile = "serving.json"
	// defaultPort is the TCP port a new repo's config listens on: fixed,
	// so a printed get command keeps working after a restart, and away
	// from kubo's 4001.
	defaultPort = 4717
	anyPortAddr = "/ip4/0.0.0.0/tcp/0"
)

// repoConfig is the repo's config.json.
type repoConfig struct {
	// Listen lists the TCP multiaddrs the node listens on unless --listen
	// says otherwise.
	Listen []string `json:"listen"`
}

// busyPolicy says what a command does when another process holds the repo.
type busyPolicy int

const (
	// busyRefuse fails at once, saying how to run a second node.
	busyRefuse busyPolicy = iota
	// busyFresh runs with a fresh identity that is not saved.
	busyFresh
	// busyShare uses the repo's identity without holding the repo (for
	// commands that only show it).
	busyShare
)

// repoHandle is an opened repo: its identity, its config and, unless
// fresh or shared, the lock that makes this process its only user.
type repoHandle struct {
	dir    string
	key    crypto.PrivKey
	cfg    repoConfig
	lock   *flock.Flock // nil when not held
	fresh  bool         // key is a throwaway identity: the repo was busy
	holder string       // pid of the process holding the repo, if known
}

// openRepo opens (creating on first use) the repo in dir and locks it for
// this process. If another process holds it, busy decides.
func openRepo(dir string, busy busyPolicy) (*repoHandle, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create repo: %w", err)
	}
	r := &repoHandle{dir: dir}
	fl := flock.New(filepath.Join(dir, lockFile))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock repo %s: %w", dir, err)
	}
	if ok {
		r.lock = fl
		_ = os.WriteFile(filepath.Join(dir, lockFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
		// A list of served files left by a process that died is stale.
		_ = os.Remove(filepath.Join(dir, servingFile))
	} else {
		if b, err := os.ReadFile(filepath.Join(dir, lockFile)); err == nil {
			r.holder = strings.TrimSpace(string(b))
		}
		switch busy {
		case busyRefuse:
			return nil, fmt.Errorf("repo %s is in use by another romap2p process%s; stop it, or give this one its own repo with --repo DIR (or ROMAP2P_REPO)", dir, r.holderNote())
		case busyFresh:
			k, _, err := crypto.GenerateEd25519Key(nil)
			if err != nil {
				return nil, fmt.Errorf("generate identity: %w", err)
			}
			r.key, r.fresh = k, true
			return r, nil
		}
	}
	if r.key, err = loadIdentity(dir); err != nil {
		r.Close()
		return nil, err
	}
	if r.cfg, err = loadConfig(dir, r.lock != nil); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// holderNote names the process holding the repo, if known.
func (r *repoHandle) holderNote() string {
	if r.holder == "" {
		return ""
	}
	return " (pid " + r.holder + ")"
}

func (r *repoHandle) configPath() string { return filepath.Join(r.dir, configFile) }

// Close releases the repo.
func (r *repoHandle) Close() error {
	if r == nil || r.lock == nil {
		return nil
	}
	_ = os.Remove(filepath.Join(r.dir, servingFile))
	return r.lock.Unlock()
}

// loadConfig reads config.json, writing the defaults on first use.
func loadConfig(dir string, write bool) (repoConfig, error) {
	path := filepath.Join(dir, configFile)
	cfg := repoConfig{Listen: []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", defaultPort)}}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var c repoConfig
		if err := json.Unmarshal(b, &c); err != nil {
			return cfg, fmt.Errorf("repo config %s: %w", path, err)
		}
		if len(c.Listen) == 0 {
			c.Listen = []string{anyPortAddr}
		}
		return c, nil
	case !errors.Is(err, fs.ErrNotExist):
		return cfg, fmt.Errorf("repo config: %w", err)
	}
	if write {
		b, _ := json.MarshalIndent(cfg, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
			return cfg, fmt.Errorf("write repo config: %w", err)
		}
	}
	return cfg, nil
}

// setServing records the files the repo's node serves, so that another
// process never writes a download over one of them.
func (r *repoHandle) setServing(paths []string) error {
	if r.lock == nil {
		return nil
	}
	abs := make([]string, 0, len(paths))
	for _, p := range paths {
		if a, err := filepath.Abs(p); err == nil {
			abs = append(abs, a)
		}
	}
	b, err := json.Marshal(abs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.dir, servingFile), b, 0o600); err != nil {
		return fmt.Errorf("record served files: %w", err)
	}
	return nil
}

// served lists the files the node holding the repo serves (none if no
// process holds it).
func (r *repoHandle) served() []string {
	if r.lock != nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(r.dir, servingFile))
	if err != nil {
		return nil
	}
	var list []string
	if json.Unmarshal(b, &list) != nil {
		return nil
	}
	return list
}
