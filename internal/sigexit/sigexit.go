// Package sigexit gives the exit status of a process ended by a signal it
// caught, as shells report one killed by it.
package sigexit

import (
	"os"
	"syscall"
)

// Status returns 128 plus sig's number, or other for a signal without one.
func Status(sig os.Signal, other int) int {
	if n, ok := sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return other
}
