//go:build vmtest

package vmtest

import (
	"os/exec"
	"testing"
)

const procConfig = `
sources:
  - {name: procs, protocol: connector, groups: [1], decoder: proc}
`

// TestProcConnector runs the proc source on the VM's 6.1 kernel, which
// predates the connector's event filter: as root, processes that exit 77
// are counted exactly (the VM runs nothing else that exits so); as nobody,
// joining the group needs CAP_NET_ADMIN on this kernel, so the source is
// down and says why.
func TestProcConnector(t *testing.T) {
	e := startExporter(t, nil, procConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "procs")
	const n = 5
	for i := 0; i < n; i++ {
		err := exec.Command(*busybox, "sh", "-c", "exit 77").Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 77 {
			t.Fatalf("sh -c 'exit 77': %v", err)
		}
	}
	e.WaitFor(t, n, "kevent_events_total", "source", "procs", "event", "exit/77")
	mfs := e.Scrape(t)
	check(t, mfs, 0, "kevent_decode_errors_total", "source", "procs")
	t.Logf("root: %d processes that exited 77 counted as exit/77", n)

	u := startExporter(t, nobody, procConfig)
	u.WaitLog(t, `source=procs protocol=11 groups=[1] msg="Not permitted to subscribe to the multicast groups`)
	u.WaitFor(t, 0, "kevent_source_up", "source", "procs")
	t.Logf("nobody: the proc source is down on this pre-6.6 kernel, with the reason logged")
}
