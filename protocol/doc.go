// Package protocol defines everything romap2p puts on the wire: protocol IDs,
// the manifest and its CID, symbol and control frames, and the limits on every
// length read from the network. It only encodes and decodes; it starts no
// goroutines and does no I/O beyond the io.Reader/io.Writer it is handed.
//
// Three protocols exist, one per purpose (see SPEC.md beside this file for
// the byte-level description):
//
//   - ManifestID: WriteRequest / ReadRequest, then WriteManifestResponse or
//     WriteManifestError / ReadManifestResponse.
//   - StatusID: WriteRequest / ReadRequest, then WriteStatus / ReadStatus.
//   - SymbolsID: WriteSubscribe / ReadSubscribe, WriteSubscribeReply /
//     ReadSubscribeReply, then frames read with a FrameReader and written with
//     AppendSymbolFrame, AppendPathFrame, AppendWidthFrame,
//     AppendGoodbyeFrame and AppendFinishedFrame.
//
// The message readers read nothing past the message they return, so a
// FrameReader can take over a stream after ReadSubscribeReply. Every decoding
// error caused by the peer wraps ErrMalformed: close that stream and nothing
// else.
package protocol
