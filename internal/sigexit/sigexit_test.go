package sigexit_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/internal/sigexit"
)

type otherSignal struct{}

func (otherSignal) String() string { return "other" }
func (otherSignal) Signal()        {}

func TestStatus(t *testing.T) {
	for _, c := range []struct {
		sig  os.Signal
		want int
	}{
		{syscall.SIGTERM, 143},
		{os.Interrupt, 130},
		{otherSignal{}, 2},
	} {
		if got := sigexit.Status(c.sig, 2); got != c.want {
			t.Errorf("Status(%v) = %d, want %d", c.sig, got, c.want)
		}
	}
}
