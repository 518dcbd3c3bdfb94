package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/romap2p/romap2p/node"
)

// The local API: long-running commands answer GET /api/v0/status with the
// state of every session, and `romap2p status` reads it.
const (
	statusPath = "/api/v0/status"
	// defaultAPI is where a serving node listens unless told otherwise; a
	// free port is used when it is taken.
	defaultAPI = "127.0.0.1:5301"
	// apiFile, inside the repo, holds the address the node actually chose.
	apiFile = "api"
)

// progressSource is what the API and the metrics read: a node, or a fake in
// tests.
type progressSource interface {
	Sessions() []cid.Cid
	Progress(c cid.Cid) (node.Progress, bool)
}

// linkJSON is a node.Link on the wire.
type linkJSON struct {
	Peer    string  `json:"peer"`
	Stripe  int     `json:"stripe"`
	RateBps float64 `json:"rate_bps"`
	Symbols uint64  `json:"symbols"`
	Fresh   uint64  `json:"fresh"`
	Skipped uint64  `json:"skipped"`
	Probe   bool    `json:"probe,omitempty"`
	Since   string  `json:"since,omitempty"`
}

// sessionJSON is a node.Progress on the wire, in snake_case.
type sessionJSON struct {
	CID           string      `json:"cid"`
	Name          string      `json:"name"`
	Size          int64       `json:"size"`
	Role          string      `json:"role"`
	Blocks        int         `json:"blocks"`
	BlocksDone    int         `json:"blocks_done"`
	BytesDone     int64       `json:"bytes_done"`
	Percent       float64     `json:"percent"`
	SymbolsIn     uint64      `json:"symbols_in"`
	SymbolsNew    uint64      `json:"symbols_new"`
	SymbolsNeeded uint64      `json:"symbols_needed"`
	GoodputBps    float64     `json:"goodput_bps"`
	WidthBps      *float64    `json:"width_bps"` // null: unbounded (source or complete)
	UploadedBytes uint64      `json:"uploaded_bytes"`
	Upstreams     []linkJSON  `json:"upstreams"`
	Children      []linkJSON  `json:"children"`
	Blamed        []blameJSON `json:"blamed"`
	BadSymbols    uint64      `json:"bad_symbols"`
	Started       string      `json:"started,omitempty"`
	Completed     string      `json:"completed,omitempty"`
	Done          bool        `json:"done"`
	Error         string      `json:"error,omitempty"`
}

// statusJSON is the answer of GET /api/v0/status.
type statusJSON struct {
	PeerID   string        `json:"peer_id"`
	Addrs    []string      `json:"addrs"`
	Sessions []sessionJSON `json:"sessions"`
}

func timeJSON(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func linksJSON(ls []node.Link) []linkJSON {
	out := make([]linkJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, linkJSON{
			Peer: l.Peer.String(), Stripe: l.Stripe, RateBps: finite(l.Rate),
			Symbols: l.Symbols, Fresh: l.Fresh, Skipped: l.Skipped, Probe: l.Probe, Since: timeJSON(l.Since),
		})
	}
	return out
}

// blameJSON is a peer proven to have sent bad data in a session.
type blameJSON struct {
	Peer   string `json:"peer"`
	Reason string `json:"reason"`
	At     string `json:"at"`
	// Symbol is the source symbol that failed its block's tree, when that
	// was the proof.
	Symbol *symbolJSON `json:"symbol,omitempty"`
}

// symbolJSON names one symbol: its source block and ESI.
type symbolJSON struct {
	Block uint8  `json:"block"`
	ESI   uint32 `json:"esi"`
}

func blamesJSON(bs []node.Blame) []blameJSON {
	out := make([]blameJSON, 0, len(bs))
	for _, b := range bs {
		bj := blameJSON{Peer: b.Peer.String(), Reason: b.Reason, At: timeJSON(b.At)}
		if b.Symbol != nil {
			bj.Symbol = &symbolJSON{Block: b.Symbol.Block, ESI: b.Symbol.ESI}
		}
		out = append(out, bj)
	}
	return out
}

// finite maps the non-numbers JSON cannot carry to 0.
func finite(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0
	}
	return v
}

// toSessionJSON converts a progress snapshot.
func toSessionJSON(p node.Progress) sessionJSON {
	s := sessionJSON{
		CID: p.CID.String(), Name: p.Name, Size: p.Size, Role: p.Role,
		Blocks: p.Blocks, BlocksDone: p.BlocksDone, BytesDone: p.BytesDone,
		Percent:   100 * fractionDone(p),
		SymbolsIn: p.SymbolsIn, SymbolsNew: p.SymbolsNew, SymbolsNeeded: p.Needed,
		GoodputBps: finite(p.Rate), UploadedBytes: p.Uploaded,
		Upstreams: linksJSON(p.Upstreams), Children: linksJSON(p.Children),
		Blamed: blamesJSON(p.Blamed), BadSymbols: p.BadSymbols,
		Started: timeJSON(p.Started), Completed: timeJSON(p.Completed), Done: p.Done,
	}
	if !math.IsInf(p.Width, 0) && !math.IsNaN(p.Width) {
		w := p.Width
		s.WidthBps = &w
	}
	if p.Err != nil {
		s.Error = p.Err.Error()
	}
	return s
}

// snapshot collects the status of every session of src.
func snapshot(src progressSource) []sessionJSON {
	out := []sessionJSON{}
	for _, c := range src.Sessions() {
		if p, ok := src.Progress(c); ok {
			out = append(out, toSessionJSON(p))
		}
	}
	return out
}

// apiHandler serves the local API for a node.
func apiHandler(src progressSource, self func() statusJSON) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+statusPath, func(w http.ResponseWriter, r *http.Request) {
		st := self()
		st.Sessions = snapshot(src)
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(st); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(buf.Bytes())
	})
	return mux
}

// nodeIdentity describes n for the API.
func nodeIdentity(n *node.Node) func() statusJSON {
	return func() statusJSON {
		ai := n.AddrInfo()
		return statusJSON{PeerID: ai.ID.String(), Addrs: usableAddrs(ai)}
	}
}

// httpService is a small HTTP server bound to a local address.
type httpService struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// listenHTTP serves h on addr. With fallback, an address already in use
// is replaced by a free port on the same interface.
func listenHTTP(addr string, h http.Handler, fallback bool) (*httpService, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && fallback && errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(addr)
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &httpService{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the server.
func (s *httpService) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if err != nil {
		return fmt.Errorf("stop http server: %w", err)
	}
	return nil
}

// apiServer is the local API of one node, with its address published in
// the repo so that `romap2p status` finds it.
type apiServer struct {
	*httpService
	file string
}

// startAPI serves the local API of n on addr (falling back to a free port)
// and records the chosen address in repo.
func startAPI(n *node.Node, addr, repo string) (*apiServer, error) {
	hs, err := listenHTTP(addr, apiHandler(n, nodeIdentity(n)), true)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	a := &apiServer{httpService: hs, file: filepath.Join(repo, apiFile)}
	if err := os.WriteFile(a.file, []byte(hs.addr+"\n"), 0o600); err != nil {
		_ = hs.Close()
		return nil, fmt.Errorf("api: record address: %w", err)
	}
	return a, nil
}

// Close stops the API and forgets its address, unless another node has
// recorded its own since.
func (a *apiServer) Close() error {
	if b, err := os.ReadFile(a.file); err == nil && strings.TrimSpace(string(b)) == a.addr {
		_ = os.Remove(a.file)
	}
	return a.httpService.Close()
}

// apiAddress picks where `status` looks: --api, then $ROMAP2P_API, then
// the address recorded in the repo, then the default.
func apiAddress(flagValue, repo string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := getenv("ROMAP2P_API"); v != "" {
		return v
	}
	if b, err := os.ReadFile(filepath.Join(repo, apiFile)); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s
		}
	}
	return defaultAPI
}
