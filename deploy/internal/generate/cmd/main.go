// Command generate writes the deployment files that repeat other files
// (see package generate). Run it from deploy/: go generate.
package main

import (
	"fmt"
	"os"

	"github.com/kevent-exporter/kevent_exporter/deploy/internal/generate"
)

func main() {
	if err := generate.Write("."); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}
