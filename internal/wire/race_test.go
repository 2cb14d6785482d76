//go:build race

package wire_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so what
// io.Discard borrows from its pool may be allocated afresh.
const raceEnabled = true
