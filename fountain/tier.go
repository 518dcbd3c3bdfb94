package fountain

import (
	"fmt"
	"os"
	"strings"

	logging "github.com/ipfs/go-log/v2"
)

var log = logging.Logger("fountain")

// Kernels names a tier of symbol-arithmetic kernels. Every tier computes
// the same bytes; they differ in speed and in the CPUs that run them.
type Kernels uint8

// The kernel tiers. KernelsAuto picks the fastest tier this CPU supports
// (or the one named by the environment variable KernelsEnv).
const (
	KernelsAuto     Kernels = iota
	KernelsPortable         // pure Go, any CPU
	KernelsAVX2             // amd64 with AVX2: 32-byte XOR, VPSHUFB multiplication
	KernelsAVX2GFNI         // amd64 with AVX2 and GFNI: as AVX2, multiplication by VGF2P8AFFINEQB
	KernelsAVX512           // amd64 with AVX-512BW/VL and GFNI
	KernelsNEON             // arm64 Advanced SIMD: VEOR, VTBL multiplication
)

// KernelsEnv is the environment variable that forces a kernel tier when no
// WithKernels option does: portable, avx2, avx2gfni, avx512 or neon.
const KernelsEnv = "ROMAP2P_FOUNTAIN_KERNELS"

var kernelNames = [...]string{
	KernelsAuto:     "auto",
	KernelsPortable: "portable",
	KernelsAVX2:     "avx2",
	KernelsAVX2GFNI: "avx2gfni",
	KernelsAVX512:   "avx512",
	KernelsNEON:     "neon",
}

// String returns the tier's name as ParseKernels and KernelsEnv take it.
func (k Kernels) String() string {
	if int(k) < len(kernelNames) {
		return kernelNames[k]
	}
	return fmt.Sprintf("Kernels(%d)", uint8(k))
}

// ParseKernels returns the tier with the given name ("" is auto).
func ParseKernels(name string) (Kernels, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return KernelsAuto, nil
	}
	for k, n := range kernelNames {
		if n == name {
			return Kernels(k), nil
		}
	}
	return KernelsAuto, fmt.Errorf("unknown kernel tier %q (want auto, portable, avx2, avx2gfni, avx512 or neon)", name)
}

// Supported reports whether this CPU and build can run the tier (auto and
// portable always can).
func (k Kernels) Supported() bool {
	switch k {
	case KernelsAuto, KernelsPortable:
		return true
	case KernelsAVX2:
		return haveAVX2
	case KernelsAVX2GFNI:
		return haveAVX2 && haveGFNIVEX
	case KernelsAVX512:
		return haveAVX512
	case KernelsNEON:
		return haveNEON
	}
	return false
}

// SupportedKernels lists the tiers this CPU and build can run, slowest
// first (auto excluded).
func SupportedKernels() []Kernels {
	var out []Kernels
	for k := KernelsPortable; int(k) < len(kernelNames); k++ {
		if k.Supported() {
			out = append(out, k)
		}
	}
	return out
}

// bestKernels is the tier auto picks when the environment names none.
func bestKernels() Kernels {
	switch {
	case haveAVX512:
		return KernelsAVX512
	case haveAVX2 && haveGFNIVEX:
		return KernelsAVX2GFNI
	case haveAVX2:
		return KernelsAVX2
	case haveNEON:
		return KernelsNEON
	}
	return KernelsPortable
}

// envKernels is the tier named by KernelsEnv, read once at start-up and
// never written afterwards; KernelsAuto when unset, unknown or not
// supported here (the last two are logged).
var envKernels = kernelsFromEnv(os.Getenv(KernelsEnv))

func kernelsFromEnv(v string) Kernels {
	k, err := ParseKernels(v)
	if err != nil {
		log.Warnf("%s: %v; using the fastest supported tier", KernelsEnv, err)
		return KernelsAuto
	}
	if !k.Supported() {
		log.Warnf("%s=%s: not supported on this CPU or build; using the fastest supported tier", KernelsEnv, k)
		return KernelsAuto
	}
	return k
}

// ResolveKernels returns the tier that the option WithKernels(k) makes the
// codec use: k itself when supported, otherwise (and for KernelsAuto) the
// tier named by KernelsEnv, otherwise the fastest tier of this CPU.
func ResolveKernels(k Kernels) Kernels {
	if k != KernelsAuto && k.Supported() {
		return k
	}
	if envKernels != KernelsAuto {
		return envKernels
	}
	return bestKernels()
}
