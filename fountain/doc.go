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
// arithmetic uses AVX-512 and GFNI on amd64 when available (build tag
// purego, or WithPortableKernels, selects the portable Go code).
package fountain
