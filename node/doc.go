// Package node binds romap2p's pieces to a libp2p host and a content router:
// it builds TCP-only hosts, runs a Kademlia DHT, serves and fetches content by
// CID, and keeps one session per CID.
//
// # Parts and owners
//
// Every goroutine is started through the group of the part that owns it,
// and every owner's Close cancels, then waits for its group (type group:
// once closed it starts nothing more, so a goroutine cannot slip in after
// the wait began). Every stream is reset when its owner's context ends
// (context.AfterFunc), whatever it is blocked on.
//
//   - Node (node.go): the facade and the session registry. Its group counts
//     the stream handlers (handlers.go: manifest, status, symbols) and runs
//     the provider announcements. Close closes every session, then waits for
//     the group, then closes the DHT and the host it built.
//   - session (session.go): one CID. Its context ends the work of all its
//     parts; its group runs the generator (generator.go). Its role is
//     roleOrigin (a file added here) or roleFetcher (a download).
//   - blockState (blocks.go): the finished and pending blocks, completion,
//     and the end of the session's work (done, with an error or nil). It has
//     its own lock and a change notification (changes); it starts nothing.
//   - downside (downstream.go): the children. Admission (admit) and
//     eviction of slow children call treebuild's decisions on what it
//     measured; the demand snapshot it builds tells the generator what the
//     children want. Its group counts the symbols handlers (each runs its
//     child's writer), the children's control readers, the goodbyes to
//     dropped children and the original source's slow-child watcher.
//   - upside (upstream.go, parents.go, extra.go, credit.go, peerbook.go):
//     the parents. Its group runs one stripe manager per stripe (attach,
//     probes, make-before-break switches), the extra whole-stream upstreams,
//     discovery, the credit loop and one reader per upstream. It owns every
//     upstream it opens: an upstream is registered only while the side is
//     open; stop closes all registered ones (at completion and at close),
//     and an upstream whose handshake ends after that is reset, never kept.
//   - fetchState (fetch.go, spill.go): the output file, the spill store, the
//     resume state, the sink that records every symbol entering the ring and
//     two decoders. Its group runs those and the delayed writes (resume
//     state, end of a block's serve grace).
//   - treeCache (verify.go): the checked tree data of each block, fetched
//     from a peer (/roma/tree/1.0.0) or computed from a block held here,
//     and served to peers. Every source symbol is checked against it on
//     arrival (upstream.go), before it is stored or forwarded; repair
//     symbols are kept with their sender's name (or, from a relay still
//     fetching, unnamed with that relay as their via, see via.go), passed
//     on only when named, and compared with the block once it decodes
//     (fetch.go). blameBook
//     (blame.go) names the peers proven wrong: dropped as parents, refused
//     as children, for the session.
//
// Policy lives in treebuild: Admit, EvictSlow, SlotUsers, Victim,
// DropExtra, SplitNeed and ShareOf are pure functions of what the node
// measured. Refusals travel as reason texts and are mapped to
// treebuild.Refusal codes at the edge. Tuning (tuning.go) holds every
// timeout, threshold, ban, window and buffer size; the chooser
// (treebuild.Chooser, WithChooser) holds those of the parent choice.
//
// # Locks
//
// Each part has its own mutex (Node.mu, blockState.mu, downside.mu,
// upside.mu, peerBook.mu, child.mu, upstream.wmu, fetchState.stateMu) and
// no code holds two of them at once, except that downside.mu is held while
// a child's own mu is taken to read its finished set: the order is
// downside.mu, then child.mu (and the relay's own locks inside Consumer
// calls). No lock is held across network or disk I/O, a channel wait,
// or a goroutine start: admission decides under downside.mu and tells
// evicted children after releasing it; status reads each part in turn and
// changes nothing. Two locks exist to serialise I/O and are held across
// it, taking no other lock meanwhile: upstream.wmu orders the control
// frames written to a parent, and fetchState.stateMu the writes of the
// small resume-state file, so that a late write cannot follow the cleanup.
// treeCache.computeMu serialises computing a tree from the local copy (held
// across the read of one block, taking no other lock); treeCache.mu and
// blameBook.mu guard maps only.
//
// # Life of a session
//
// Get finds the manifest (findManifest), builds a roleFetcher session and
// its fetchState (openFetch: output, spill, resume state), registers it,
// and starts it: the generator over the partial output (it serves blocks
// decoded here to the children), the sink and the decoders in the
// fetcher's group, and the upstream side's managers and credit loop in
// its group. Children subscribe through handleSymbols meanwhile. Each
// decoded block is verified, written, marked finished (blockState) and
// reported to the parents; the last one makes the fetcher complete: the
// upstream side stops (every upstream closed), the block state turns
// complete, the file is synced and renamed, and blockState.end(nil) wakes
// Get. The session stays and serves as a complete peer.
//
// Add builds a roleOrigin session whose block state is complete from the
// start and whose generator serves every block.
//
// Close (Node.Close, or Drop, or an interrupted Get) runs session.close:
// cancel the context (every stream of the session is reset), close the
// ring, stop the upstream side and wait for its group, wait for the
// fetcher's group, close the children and wait for the downstream group,
// wait for the generator, end the block state with ErrClosed (a Get still
// waiting returns it), then close the files, keeping a partial download
// for a resume.
package node
