package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// TestFamilySources subscribes an unprivileged exporter to generic netlink
// families of this kernel by name. thermal, acpi_event and VFS_DQUOT exist
// only in the initial network namespace, so this exporter runs in the
// namespace the tests started in (it only checks that the sources are up,
// which traffic cannot change); a
// family no module registered is down, with one log line.
func TestFamilySources(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "entering the initial network namespace")
	e := e2e.Start(t, e2e.Options{
		Binary:  exporterBinary,
		Wrapper: []string{"nsenter", "--net=" + testenv.HostNetns(), "--setuid=65534", "--setgid=65534", "--"},
		Netns:   testenv.HostNetns(),
		Config: `
sources:
  - {name: nlctrl, family: nlctrl, groups: [notify], decoder: genl}
  - {name: thermal, family: thermal, groups: [event], decoder: genl}
  - {name: acpi, family: acpi_event, groups: [acpi_mc_group], decoder: genl}
  - {name: quota, family: VFS_DQUOT, groups: [events], decoder: genl}
  - {name: missing, family: kevent_nosuch, groups: [events], decoder: kevent}
`,
	})
	for _, src := range []string{"nlctrl", "thermal", "acpi", "quota"} {
		e.WaitFor(t, 1, "kevent_source_up", "source", src)
		e.WaitFor(t, 1, "kevent_source_groups_joined", "source", src)
	}
	e.WaitLog(t, `source=missing family=kevent_nosuch groups=events msg="Generic netlink family not registered: the kernel module that provides it is not loaded; waiting for it"`)
	e.WaitFor(t, 0, "kevent_source_up", "source", "missing")
	if uid := processUID(t, e.Cmd.Process.Pid); uid != "65534" {
		t.Fatalf("exporter runs as uid %s, want 65534", uid)
	}
}

// processUID returns the real uid of process pid, from /proc.
func processUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			return f[1]
		}
	}
	t.Fatal("no Uid line")
	return ""
}
