package main

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// The embedding works on hosts that speak TCP and QUIC and are connected
// over QUIC only: the content arrives whole, and romap2p's symbols travel
// over TCP while the QUIC connection stays up for the host's own use.
func TestEmbedOnQUICHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log bytes.Buffer
	res, err := run(ctx, 8<<20+17, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("%+v\n%s", res, log.String())
	if res.Transport != "tcp" {
		t.Errorf("symbols went over %q, want tcp only", res.Transport)
	}
	if res.Took > 30*time.Second {
		// Not a speed target: 8 MiB on loopback takes well under a
		// second; this long means a stream went where it is refused.
		t.Errorf("the transfer stalled: %v", res.Took)
	}
	if res.QUICConns == 0 {
		t.Error("the QUIC connection is gone: the host's own choice was not left alone")
	}
}
