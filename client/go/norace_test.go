//go:build !race

package nearcache

const raceEnabled = false
