//go:build !race

package swarm

// raceEnabled reports a build with the race detector.
const raceEnabled = false
