// Package relay implements ROMA's forward-when-feasible relaying: a node
// copies every symbol it receives (or generates) once into a fixed-size ring,
// and feeds each child from that ring at the child's own pace. A child that
// falls more than a ring behind skips ahead to the oldest symbol still held; it
// never slows the producer or the other children. Because the stream is a
// rateless code, the symbols a slow child misses cost it nothing but time.
//
// The pieces:
//
//   - [Ring] holds symbol frames of one size T, written by one producer at a
//     time (Put, or Reserve then Commit to read a frame from the network
//     straight into its slot) and read by any number of consumers.
//   - [Consumer] is one reader with its own cursor and its own filter (finished
//     blocks, ESI stripe). Next hands symbols out one by one; a lossless
//     consumer (the node's local sink) is never skipped: the producer waits
//     for it instead.
//   - [Writer] drives one consumer into an io.Writer, batching whole frames
//     into large writes straight from the ring, with control frames injected
//     between batches.
//   - [Ring.Generate] is source pacing: it fills the ring from a generator only
//     while the fastest child is close to the head, so the encoder runs at the
//     rate the fastest child actually takes.
//
// [WithBackPressure] turns the same engine into the store-and-forward baseline
// the paper argues against: every consumer becomes lossless and the producer
// waits for the slowest one. It exists so that tests and benchmarks can show
// the difference on identical code.
package relay
