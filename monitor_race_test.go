//go:build race

package berth_test

// raceDetector: this binary, and so the monitor it runs, is built with
// the race detector, which multiplies memory use.
const raceDetector = true
