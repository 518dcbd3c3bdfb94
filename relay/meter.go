package relay

import (
	"sync"
	"time"
)

const (
	// meterEvery is the minimum spacing of rate samples.
	meterEvery = 125 * time.Millisecond
	// meterWindow is the span a rate is measured over.
	meterWindow = time.Second
	// meterSamples covers about twice meterWindow.
	meterSamples = 16
)

type sample struct {
	at    time.Time
	bytes uint64
}

// meter turns a growing byte counter into a recent rate. tick is called by the
// counter's single writer; rate may be called from any goroutine.
type meter struct {
	last time.Time // touched only by the ticking goroutine

	mu      sync.Mutex
	samples [meterSamples]sample
	n, next int
}

func newMeter(now time.Time) *meter {
	m := &meter{last: now}
	m.samples[0] = sample{at: now}
	m.n, m.next = 1, 1
	return m
}

// tick records the counter's value if the last sample is old enough.
func (m *meter) tick(now time.Time, bytes uint64) {
	if now.Sub(m.last) < meterEvery {
		return
	}
	m.last = now
	m.mu.Lock()
	m.samples[m.next] = sample{at: now, bytes: bytes}
	m.next = (m.next + 1) % meterSamples
	if m.n < meterSamples {
		m.n++
	}
	m.mu.Unlock()
}

// rate returns bytes per second between the newest sample at least a window
// old (or the oldest sample held) and the live counter value.
func (m *meter) rate(now time.Time, bytes uint64) float64 {
	m.mu.Lock()
	ref := m.samples[(m.next-m.n+meterSamples)%meterSamples] // oldest
	for i := 1; i <= m.n; i++ {
		s := m.samples[(m.next-i+meterSamples)%meterSamples]
		if now.Sub(s.at) >= meterWindow {
			ref = s
			break
		}
	}
	m.mu.Unlock()
	dt := now.Sub(ref.at).Seconds()
	if dt <= 0 || bytes < ref.bytes {
		return 0
	}
	return float64(bytes-ref.bytes) / dt
}
