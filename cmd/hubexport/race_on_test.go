//go:build race

package main

// raceEnabled: the tests run under the race detector, so the hubexport
// binary they start is built with it too, and a race in a worker, a lock
// keeper or an event stream fails the test that ran into it.
const raceEnabled = true
