package fountain

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	xraptorq "github.com/xssnick/raptorq"
)

// compareRates are the MB/s of compareRun: elapsed time, and process CPU
// time (zero where it cannot be read).
type compareRates struct {
	ourEnc, ourDec, xEnc, xDec             float64
	cpuOurEnc, cpuOurDec, cpuXEnc, cpuXDec float64
}

// compareRun encodes and decodes every block of a random object with this
// package and with github.com/xssnick/raptorq, on the same block partition,
// the same data and the same lost symbols, and returns MB/s for each, per
// second of elapsed time and per second of the process's CPU time (which
// leaves out the time other processes held the core).
func compareRun(tb testing.TB, size int64, T int, loss float64) compareRates {
	o, err := NewOTI(size, T)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	plans := NewPlanCache()
	var tOE, tOD, tXE, tXD time.Duration
	var cOE, cOD, cXE, cXD time.Duration
	src := make([]byte, o.BlockLen(0))
	out := make([]byte, o.BlockLen(0))
	xq := xraptorq.NewRaptorQ(uint32(T))
	var syms []byte
	for sbn := 0; sbn < o.Blocks(); sbn++ {
		blen := int(o.BlockLen(sbn))
		K := o.BlockSymbols(sbn)
		fillRandom(rng, src[:blen])
		block := src[:blen]
		sent := int(float64(K)/(1-loss)) + 1
		keep := rng.Perm(sent)[:sent-int(float64(sent)*loss)]
		// Enough survivors for both codecs, so neither needs extra rounds.
		for i := 0; len(keep) < K+4; i++ {
			keep = append(keep, sent+i)
		}
		total := sent + (len(keep) - (sent - int(float64(sent)*loss)))

		// This package.
		if cap(syms) < total*T {
			syms = make([]byte, total*T)
		}
		st, cpu := time.Now(), processCPU()
		enc, err := NewBlockEncoder(o, sbn, block, WithPlanCache(plans))
		if err != nil {
			tb.Fatal(err)
		}
		for i := 0; i < total; i++ {
			if i < K {
				n := copy(syms[i*T:(i+1)*T], block[min(i*T, blen):min((i+1)*T, blen)])
				clear(syms[i*T+n : (i+1)*T])
			} else if err := enc.Symbol(uint32(i), syms[i*T:(i+1)*T]); err != nil {
				tb.Fatal(err)
			}
		}
		enc.Release()
		tOE += time.Since(st)
		cOE += processCPU() - cpu
		st, cpu = time.Now(), processCPU()
		dec := NewBlockDecoder(o, sbn)
		for _, e := range keep {
			dec.Add(uint32(e), syms[e*T:(e+1)*T])
		}
		if err := dec.Decode(out[:blen]); err != nil {
			tb.Fatalf("block %d: %v", sbn, err)
		}
		dec.Release()
		tOD += time.Since(st)
		cOD += processCPU() - cpu
		if !bytes.Equal(out[:blen], block) {
			tb.Fatal("decoded bytes differ")
		}

		// xssnick/raptorq.
		st, cpu = time.Now(), processCPU()
		xe, err := xq.CreateEncoder(block)
		if err != nil {
			tb.Fatal(err)
		}
		xs := make([][]byte, total)
		for i := 0; i < total; i++ {
			xs[i] = xe.GenSymbol(uint32(i))
		}
		tXE += time.Since(st)
		cXE += processCPU() - cpu
		st, cpu = time.Now(), processCPU()
		xd, err := xq.CreateDecoder(uint32(blen))
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range keep {
			if _, err := xd.AddSymbol(uint32(e), xs[e]); err != nil {
				tb.Fatal(err)
			}
		}
		ok, data, err := xd.Decode()
		if err != nil || !ok {
			tb.Fatalf("xssnick block %d: %v %v", sbn, ok, err)
		}
		tXD += time.Since(st)
		cXD += processCPU() - cpu
		if !bytes.Equal(data[:blen], block) {
			tb.Fatal("xssnick decoded bytes differ")
		}
	}
	mb := float64(size) / 1e6
	r := compareRates{ourEnc: mb / tOE.Seconds(), ourDec: mb / tOD.Seconds(), xEnc: mb / tXE.Seconds(), xDec: mb / tXD.Seconds()}
	if cOE > 0 && cOD > 0 && cXE > 0 && cXD > 0 {
		r.cpuOurEnc, r.cpuOurDec = mb/cOE.Seconds(), mb/cOD.Seconds()
		r.cpuXEnc, r.cpuXDec = mb/cXE.Seconds(), mb/cXD.Seconds()
	}
	return r
}

func TestCompareXssnickSmall(t *testing.T) {
	compareRun(t, 1<<20+77, 1024, 0.5)
}

// BenchmarkVsXssnick is the side-by-side comparison on a 64 MiB object with
// half of the symbols lost. It uses the kernel tier ROMAP2P_FOUNTAIN_KERNELS
// names, by default the fastest one here. The cpu- metrics are the same
// rates and ratios per second of the process's CPU time: on a machine
// shared with other work, the elapsed-time ratios swing with whichever side
// lost the core for a while.
func BenchmarkVsXssnick(b *testing.B) {
	b.Logf("kernels: %v", ResolveKernels(KernelsAuto))
	for _, T := range []int{1024, 4096} {
		b.Run(fmt.Sprintf("T=%d", T), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := compareRun(b, 64<<20, T, 0.5)
				b.ReportMetric(r.ourEnc, "enc-MB/s")
				b.ReportMetric(r.ourDec, "dec-MB/s")
				b.ReportMetric(r.xEnc, "x-enc-MB/s")
				b.ReportMetric(r.xDec, "x-dec-MB/s")
				b.ReportMetric(r.ourEnc/r.xEnc, "enc-ratio")
				b.ReportMetric(r.ourDec/r.xDec, "dec-ratio")
				if r.cpuOurEnc > 0 {
					b.ReportMetric(r.cpuOurEnc, "cpu-enc-MB/s")
					b.ReportMetric(r.cpuOurDec, "cpu-dec-MB/s")
					b.ReportMetric(r.cpuXEnc, "cpu-x-enc-MB/s")
					b.ReportMetric(r.cpuXDec, "cpu-x-dec-MB/s")
					b.ReportMetric(r.cpuOurEnc/r.cpuXEnc, "cpu-enc-ratio")
					b.ReportMetric(r.cpuOurDec/r.cpuXDec, "cpu-dec-ratio")
				}
			}
		})
	}
}
