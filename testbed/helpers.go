package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// The helpers below run inside a host's namespace as `testbed _NAME ...`:
// the harness starts itself there, so that plain TCP needs no other tool.

// helperHTTP serves one file at /file until interrupted.
func helperHTTP(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("_http ADDR FILE")
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return fmt.Errorf("_http: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, args[1]) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Println("listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		_ = srv.Close()
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("_http: %w", err)
	}
}

// helperFetch downloads a URL to a file and prints "done BYTES".
func helperFetch(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("_fetch URL OUT")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return fmt.Errorf("_fetch: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("_fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("_fetch: %s", resp.Status)
	}
	f, err := os.Create(args[1])
	if err != nil {
		return fmt.Errorf("_fetch: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("_fetch: %w", err)
	}
	fmt.Printf("done %d\n", n)
	return nil
}

// helperSink accepts one TCP connection and prints the rate it received at
// between the end of the warm-up and the end of the flow, in bit/s.
func helperSink(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("_sink ADDR WARMUP_S")
	}
	warm, err := strconv.ParseFloat(args[1], 64)
	if err != nil {
		return fmt.Errorf("_sink: warm-up: %w", err)
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return fmt.Errorf("_sink: %w", err)
	}
	defer ln.Close()
	fmt.Println("listening")
	go func() { <-ctx.Done(); ln.Close() }()
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("_sink: %w", err)
	}
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	buf := make([]byte, 256<<10)
	start := time.Now()
	var total, atWarm int64
	var warmAt time.Time
	for {
		n, err := c.Read(buf)
		total += int64(n)
		if warmAt.IsZero() && time.Since(start).Seconds() >= warm {
			warmAt, atWarm = time.Now(), total
		}
		if err != nil {
			break
		}
	}
	if warmAt.IsZero() {
		return errors.New("_sink: the flow ended inside the warm-up")
	}
	el := time.Since(warmAt).Seconds()
	fmt.Printf("rate %.0f\n", float64(total-atWarm)*8/el)
	return nil
}

// helperSend sends zeros to ADDR for SECONDS.
func helperSend(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("_send ADDR SECONDS")
	}
	secs, err := strconv.ParseFloat(args[1], 64)
	if err != nil {
		return fmt.Errorf("_send: %w", err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", args[0])
	if err != nil {
		return fmt.Errorf("_send: %w", err)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	end := time.Now().Add(time.Duration(secs * float64(time.Second)))
	for time.Now().Before(end) && ctx.Err() == nil {
		_ = c.SetWriteDeadline(end)
		if _, err := c.Write(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return fmt.Errorf("_send: %w", err)
		}
	}
	return nil
}
