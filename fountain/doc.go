// Package fountain is the erasure code of romap2p: RaptorQ as specified in
// RFC 6330.
//
// An object is cut into at most 256 source blocks of K symbols of T bytes
// (NewOTI, RFC 6330 section 4.4.1). For each block a BlockEncoder computes
// the intermediate symbols once and then produces any encoding symbol: ESIs
// 0..K-1 are the source symbols themselves, larger ESIs (up to 2^24-1) are
// repair symbols. Any K or slightly more distinct symbols of a block let a
// BlockDecoder rebuild it. Encoder serves symbols of a whole object read
// through an io.ReaderAt, with a bounded cache of block encoders.
//
// Symbols are byte-compatible with other RFC 6330 implementations. Symbol
// arithmetic runs in one of several kernel tiers chosen at run time, all
// computing the same bytes: AVX-512 with GFNI, AVX2 with GFNI, AVX2 (amd64),
// NEON (arm64) and portable Go. WithKernels or the environment variable
// ROMAP2P_FOUNTAIN_KERNELS forces one; the build tag purego leaves out all
// assembly, nopshufb the table-shuffle multiplication kernels.
package fountain
