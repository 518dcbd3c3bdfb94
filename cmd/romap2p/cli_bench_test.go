package main

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/romap2p/romap2p/protocol"
)

// BenchmarkProgressLine measures one redraw of the progress bar.
func BenchmarkProgressLine(b *testing.B) {
	p := fetching(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = progressLine(p, 3*time.Second, 120)
	}
}

// manySessions is a source of n fetching sessions.
func manySessions(t testing.TB, n int) fakeSource {
	src := fakeSource{}
	for i := range n {
		p := fetching(t)
		p.CID = protocol.ManifestCID([]byte(fmt.Sprint("session ", i)))
		src[p.CID] = p
	}
	return src
}

// BenchmarkStatusAPI measures one GET /api/v0/status with 100 sessions.
func BenchmarkStatusAPI(b *testing.B) {
	h := apiHandler(manySessions(b, 100), func() statusJSON { return statusJSON{PeerID: testPeer} })
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", statusPath, nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkMetricsScrape measures one scrape of the session collector with
// 100 sessions.
func BenchmarkMetricsScrape(b *testing.B) {
	reg, err := metricsRegistry(manySessions(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
