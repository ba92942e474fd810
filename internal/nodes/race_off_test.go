//go:build !race

package nodes

const raceDetector = false
