//go:build race

package sessionkit_test

// raceEnabled: the race detector makes sync.Pool drop objects at random,
// so allocation counts are not what a normal build sees.
const raceEnabled = true
