// Package node binds romap2p's pieces to a libp2p host and a content router:
// it builds TCP-only hosts, runs a Kademlia DHT, serves and fetches content by
// CID, and keeps one session per CID.
package node
