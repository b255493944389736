//go:build race

package compare

// raceEnabled is true when built with the race detector.
const raceEnabled = true
