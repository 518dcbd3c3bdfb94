//go:build race

package node

// raceEnabled reports a build with the race detector.
const raceEnabled = true
