// Package protocol defines everything romap2p puts on the wire: protocol IDs,
// the manifest and its CID, symbol and control frames, and the limits on every
// length read from the network. It only encodes and decodes; it starts no
// goroutines and does no I/O beyond the io.Reader/io.Writer it is handed.
package protocol
