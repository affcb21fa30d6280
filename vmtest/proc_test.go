//go:build vmtest

package vmtest

import (
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// procGroup is the connector's group of process events, CN_IDX_PROC.
const procGroup = 1

const procConfig = `
sources:
  - {name: procs, protocol: connector, groups: [1], decoder: proc}
`

// TestProcConnector runs the proc source on the VM's kernel: as root,
// processes that exit 77 are counted exactly (the VM runs nothing else that
// exits so). Whether uid 65534 may join the connector's group depends on
// the kernel's build (Linux 6.6 began to allow it; a build may still
// refuse): a probe tries, and an exporter run as nobody counts the same
// where it joined, and has the source down, saying why, where not.
func TestProcConnector(t *testing.T) {
	countExits(t, startExporter(t, nil, procConfig), "root")

	probed := testenv.JoinAsNobody(t, "", unix.NETLINK_CONNECTOR, procGroup)
	u := startExporter(t, nobody, procConfig)
	u.WantAsProbed(t, "procs", procGroup, probed)
	if probed != nil {
		t.Logf("nobody: this kernel does not let uid 65534 join the connector's group (%v): the source is down, with the reason logged", probed)
		return
	}
	countExits(t, u, "nobody")
}

// countExits checks that exporter e, whose proc source has counted no
// exit/77 yet, counts exactly those of n processes.
func countExits(t *testing.T, e *e2e.Exporter, who string) {
	t.Helper()
	e.WaitFor(t, 1, "kevent_source_up", "source", "procs")
	const n = 5
	for i := 0; i < n; i++ {
		err := exec.Command(*busybox, "sh", "-c", "exit 77").Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 77 {
			t.Fatalf("sh -c 'exit 77': %v", err)
		}
	}
	e.WaitFor(t, n, "kevent_events_total", "source", "procs", "event", "exit/77")
	check(t, e.Scrape(t), 0, "kevent_decode_errors_total", "source", "procs")
	t.Logf("%s: %d processes that exited 77 counted as exit/77", who, n)
}
