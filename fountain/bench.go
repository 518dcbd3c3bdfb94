package fountain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// BenchResult is the outcome of Bench.
type BenchResult struct {
	Size         int64   `json:"size"`
	SymbolSize   int     `json:"symbol_size"`
	Loss         float64 `json:"loss"`
	Blocks       int     `json:"blocks"`
	BlockSymbols int     `json:"block_symbols"`
	EncodeMBps   float64 `json:"encode_MBps"`
	DecodeMBps   float64 `json:"decode_MBps"`
	// EncodeCPUMBps and DecodeCPUMBps are the same rates per second of the
	// process's CPU time instead of elapsed time (0 where the system does
	// not tell it): on a machine shared with other work they still show
	// what one core does, where the elapsed rates include the time other
	// processes held the core.
	EncodeCPUMBps   float64 `json:"encode_cpu_MBps,omitempty"`
	DecodeCPUMBps   float64 `json:"decode_cpu_MBps,omitempty"`
	OverheadSymbols int     `json:"overhead_symbols"`
	// Kernels is the tier of symbol-arithmetic kernels that ran.
	Kernels string `json:"kernels"`
}

// BenchOption tunes Bench.
type BenchOption func(*benchConfig)

type benchConfig struct {
	seed      uint64
	partition []PartitionOption
	block     []BlockOption
}

// WithBenchSeed fixes the random data and losses.
func WithBenchSeed(seed uint64) BenchOption {
	return func(c *benchConfig) { c.seed = seed }
}

// WithBenchPartition passes options to NewOTI.
func WithBenchPartition(opts ...PartitionOption) BenchOption {
	return func(c *benchConfig) { c.partition = append(c.partition, opts...) }
}

// WithBenchBlockOptions passes options to the block encoders and decoders.
func WithBenchBlockOptions(opts ...BlockOption) BenchOption {
	return func(c *benchConfig) { c.block = append(c.block, opts...) }
}

// Bench measures the codec on one core: it encodes size bytes of random data
// with symbols of symbolSize bytes, sending for every block enough symbols
// that about K survive when the fraction loss of them is dropped at random,
// decodes each block from the survivors (adding repair symbols, none of them
// lost, until it decodes) and checks the bytes. Rates are 10^6 source bytes
// per second. OverheadSymbols is the total of received symbols beyond K.
func Bench(ctx context.Context, size int64, symbolSize int, loss float64, opts ...BenchOption) (BenchResult, error) {
	cfg := benchConfig{seed: 1}
	for _, f := range opts {
		f(&cfg)
	}
	if loss < 0 || loss >= 1 {
		return BenchResult{}, fmt.Errorf("loss %v outside [0, 1)", loss)
	}
	o, err := NewOTI(size, symbolSize, cfg.partition...)
	if err != nil {
		return BenchResult{}, err
	}
	var bcfg blockConfig
	for _, f := range cfg.block {
		f(&bcfg)
	}
	res := BenchResult{Size: size, SymbolSize: symbolSize, Loss: loss, Blocks: o.Blocks(), BlockSymbols: o.BlockSymbols(0),
		Kernels: ResolveKernels(bcfg.kernels).String()}
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15))
	T := symbolSize
	plans := NewPlanCache()
	blockOpts := append([]BlockOption{WithPlanCache(plans)}, cfg.block...)
	var encTime, decTime, encCPU, decCPU time.Duration
	maxLen := o.BlockLen(0)
	src := make([]byte, maxLen)
	out := make([]byte, maxLen)
	var syms []byte
	var esis []uint32
	for sbn := 0; sbn < o.Blocks(); sbn++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		blen := int(o.BlockLen(sbn))
		K := o.BlockSymbols(sbn)
		fillRandom(rng, src[:blen])
		sent := int((float64(K) / (1 - loss)) + 0.999999)
		if cap(syms) < sent*T {
			syms = make([]byte, sent*T)
		}
		syms = syms[:sent*T]

		start, cpu := time.Now(), processCPU()
		enc, err := NewBlockEncoder(o, sbn, src[:blen], blockOpts...)
		if err != nil {
			return res, err
		}
		for i := 0; i < sent; i++ {
			sym := syms[i*T : (i+1)*T]
			if i < K {
				n := copy(sym, src[min(i*T, blen):min((i+1)*T, blen)])
				clear(sym[n:])
				continue
			}
			if err := enc.Symbol(uint32(i), sym); err != nil {
				return res, err
			}
		}
		encTime += time.Since(start)
		encCPU += processCPU() - cpu

		// Drop the fraction loss of the sent symbols.
		esis = esis[:0]
		for i := 0; i < sent; i++ {
			esis = append(esis, uint32(i))
		}
		rng.Shuffle(len(esis), func(i, j int) { esis[i], esis[j] = esis[j], esis[i] })
		esis = esis[:sent-int(float64(sent)*loss)]

		start, cpu = time.Now(), processCPU()
		dec := NewBlockDecoder(o, sbn, blockOpts...)
		for _, e := range esis {
			if _, err := dec.Add(e, syms[int(e)*T:int(e+1)*T]); err != nil {
				return res, err
			}
		}
		extra := uint32(sent)
		var spare []byte
		for {
			err := dec.Decode(out[:blen])
			if err == nil {
				break
			}
			if !errors.Is(err, ErrNeedMore) {
				return res, fmt.Errorf("block %d: %w", sbn, err)
			}
			if spare == nil {
				spare = make([]byte, T)
			}
			if err := enc.Symbol(extra, spare); err != nil {
				return res, err
			}
			if _, err := dec.Add(extra, spare); err != nil {
				return res, err
			}
			extra++
		}
		res.OverheadSymbols += dec.Received() - K
		dec.Release()
		enc.Release()
		decTime += time.Since(start)
		decCPU += processCPU() - cpu
		if !bytes.Equal(out[:blen], src[:blen]) {
			return res, fmt.Errorf("block %d decoded to different bytes", sbn)
		}
	}
	mb := float64(size) / 1e6
	res.EncodeMBps = mb / encTime.Seconds()
	res.DecodeMBps = mb / decTime.Seconds()
	if encCPU > 0 && decCPU > 0 {
		res.EncodeCPUMBps = mb / encCPU.Seconds()
		res.DecodeCPUMBps = mb / decCPU.Seconds()
	}
	return res, nil
}

func fillRandom(r *rand.Rand, b []byte) {
	for len(b) >= 8 {
		x := r.Uint64()
		for i := 0; i < 8; i++ {
			b[i] = byte(x >> (8 * i))
		}
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}
