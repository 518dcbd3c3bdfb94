package treebuild

import (
	"math"
	"time"
)

// BytesPerMbit is the number of bytes per second in one Mbit/s.
const BytesPerMbit = 1e6 / 8

// Mbit converts a rate in bytes per second to Mbit/s.
func Mbit(bytesPerSec float64) float64 { return bytesPerSec / BytesPerMbit }

// FromMbit converts a rate in Mbit/s to bytes per second.
func FromMbit(mbit float64) float64 { return mbit * BytesPerMbit }

// Hop describes one TCP connection (one overlay hop): its round-trip time
// and its steady-state loss event rate (a fraction, 0.001 = 0.1 %).
type Hop struct {
	RTT  time.Duration
	Loss float64
}

// RateFunc estimates the throughput in bytes per second of one TCP
// connection carrying packets of size bytes over hop h.
type RateFunc func(size float64, h Hop) float64

// TCPRate is paper eq. 1, the TCP-friendly rate equation of Padhye et al.
// with the retransmission timeout set to four round-trip times:
//
//	T = s / (rtt * (sqrt(2p/3) + 12 * sqrt(3p/8) * p * (1 + 32p^2)))
//
// It returns +Inf for a hop without loss or delay. Loss rates above 1 are
// treated as 1.
func TCPRate(size float64, h Hop) float64 {
	rtt, p := h.RTT.Seconds(), math.Min(h.Loss, 1)
	if rtt <= 0 || p <= 0 {
		return math.Inf(1)
	}
	const rtoFactor = 4 // t_RTO = 4 rtt
	den := math.Sqrt(2*p/3) + rtoFactor*3*math.Sqrt(3*p/8)*p*(1+32*p*p)
	return size / (rtt * den)
}

// SimpleRate is the paper's shorthand for eq. 1, the square-root law
// T = s * sqrt(1.5) / (rtt * sqrt(p)). It returns +Inf for a hop without
// loss or delay.
func SimpleRate(size float64, h Hop) float64 {
	rtt, p := h.RTT.Seconds(), math.Min(h.Loss, 1)
	if rtt <= 0 || p <= 0 {
		return math.Inf(1)
	}
	return size * math.Sqrt(1.5) / (rtt * math.Sqrt(p))
}

// Chain is paper eq. 2: a chain of loosely coupled TCP connections runs at
// the rate of its slowest hop, each hop rated on its own by rate (SimpleRate
// in the paper). An empty chain has no bottleneck and returns +Inf.
func Chain(size float64, hops []Hop, rate RateFunc) float64 {
	w := math.Inf(1)
	for _, h := range hops {
		w = math.Min(w, rate(size, h))
	}
	return w
}

// Conservative is paper eq. 3, the aggregate model used by earlier work: the
// chain is rated as one connection whose round-trip time is the sum of the
// hops' and whose loss rate is 1 - prod(1 - p_i), in the simple form. It
// treats a split connection no differently from the direct one, which the
// paper's measurements show underestimates chains.
func Conservative(size float64, hops []Hop) float64 {
	var agg Hop
	keep := 1.0
	for _, h := range hops {
		agg.RTT += h.RTT
		keep *= 1 - math.Min(math.Max(h.Loss, 0), 1)
	}
	agg.Loss = 1 - keep
	return SimpleRate(size, agg)
}

// LossForRate inverts eq. 1: it returns the loss event rate at which
// TCPRate(size, Hop{rtt, p}) equals rate, the way the paper derives loss
// rates from measured throughput and round-trip time. It returns 0 when
// rate is +Inf or rtt is not positive, and 1 when even total loss would
// exceed rate.
func LossForRate(size float64, rtt time.Duration, rate float64) float64 {
	if math.IsInf(rate, 1) || rtt <= 0 {
		return 0
	}
	if rate <= TCPRate(size, Hop{RTT: rtt, Loss: 1}) {
		return 1
	}
	// TCPRate falls monotonically with p: bisect on a log scale.
	lo, hi := 1e-12, 1.0
	for range 200 {
		mid := math.Sqrt(lo * hi)
		if TCPRate(size, Hop{RTT: rtt, Loss: mid}) > rate {
			lo = mid
		} else {
			hi = mid
		}
		if hi/lo < 1+1e-12 {
			break
		}
	}
	return math.Sqrt(lo * hi)
}
