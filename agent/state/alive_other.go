//go:build !unix

package state

import "os"

// Alive reports whether process pid exists.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid) // opens the process on Windows
	if err != nil {
		return false
	}
	p.Release()
	return true
}
