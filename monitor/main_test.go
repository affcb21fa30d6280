package monitor

import (
	"testing"

	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// The tests that receive run as root in a network namespace of the
// package's own (testenv.Main); the encoder's and the flags' need neither.
func TestMain(m *testing.M) { testenv.Main(m) }
