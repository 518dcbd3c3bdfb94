// Package treebuild decides who feeds whom in a ROMA swarm.
//
// It holds three layers, all pure computation without I/O or goroutines:
//
//   - the throughput model of the ROMA paper: the TCP-friendly rate equation
//     (eq. 1), its simple square-root form, the rate of a chain of TCP
//     connections (eq. 2) and the older, conservative aggregate model (eq. 3);
//   - rate matrices (measured per-pair rates plus per-host access caps) and the
//     analysis run on them: the centralised widest-path tree (a Dijkstra
//     variant), direct unicast rates, multi-parent max-flow and the lower bound
//     on the time any scheme needs to deliver a file to every receiver;
//   - the decentralised decisions a peer takes on its own: which candidate to
//     probe, which parent to pick, when to switch (hysteresis and dwell), when
//     the parent has stalled, whether a parent admits a child, how stripes
//     spread the uplink and when to add or drop an extra upstream.
//
// Every decision function takes the current time as an argument, so callers
// (and tests) control the clock. Rates are bytes per second throughout; use
// Mbit and FromMbit to convert for human output.
package treebuild
