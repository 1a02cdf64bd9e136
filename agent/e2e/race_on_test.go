//go:build race

package e2e

// raceEnabled: the test binary is built with -race, so the agent is too.
const raceEnabled = true
