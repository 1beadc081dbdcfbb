//go:build race

package nearcache

// raceEnabled: the race detector changes what allocates (sync.Pool drops
// items on purpose), so the allocation tests run without it.
const raceEnabled = true
