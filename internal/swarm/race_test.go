//go:build race

package swarm

// raceEnabled: the race detector slows every node several times over. A
// receiver whose parent on a stripe redirects or drops it then sometimes
// completes from the other stripes before it finds a new one (seen in about
// 1 run of 10 of TestSwarmStripeParents), and so has no parent on that stripe.
const raceEnabled = true
