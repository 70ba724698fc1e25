//go:build !race

package berth_test

// raceDetector: this binary is built without the race detector.
const raceDetector = false
