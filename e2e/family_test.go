package e2e_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// TestFamilySources subscribes an unprivileged exporter to generic netlink
// families of this kernel by name. thermal, acpi_event and VFS_DQUOT exist
// only in the initial network namespace, so this exporter runs in the
// namespace the tests started in (it only checks that the sources are up,
// which traffic cannot change); a family no module registered is down,
// with one log line. Which families a kernel has, and which of their
// groups uid 65534 may join, depend on its build: a probe says, and each
// source must be as it found.
func TestFamilySources(t *testing.T) {
	t.Parallel()
	e := startExporterIn(t, testenv.HostNetns(), `
sources:
  - {name: nlctrl, family: nlctrl, groups: [notify], decoder: genl}
  - {name: thermal, family: thermal, groups: [event], decoder: genl}
  - {name: acpi, family: acpi_event, groups: [acpi_mc_group], decoder: genl}
  - {name: quota, family: VFS_DQUOT, groups: [events], decoder: genl}
  - {name: missing, family: kevent_nosuch, groups: [events], decoder: kevent}
`, "--setuid=65534", "--setgid=65534")
	for _, s := range [][3]string{
		{"nlctrl", "nlctrl", "notify"},
		{"thermal", "thermal", "event"},
		{"acpi", "acpi_event", "acpi_mc_group"},
		{"quota", "VFS_DQUOT", "events"},
	} {
		p := e2e.ProbeFamily(t, testenv.HostNetns(), s[1], s[2])
		t.Logf("as uid 65534: %s", p)
		e.WantFamilyAsProbed(t, s[0], p)
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

// TestFamilyGroupNotPermitted: mptcp_pm's groups are flagged
// GENL_UNS_ADMIN_PERM, so an unprivileged exporter cannot join them: the
// source is down and the log says which group and why, while a group it may
// join (ethtool's monitor) works beside it. A probe says what the kernel
// allows uid 65534 (a kernel may lack either family): the exporter must
// match it.
func TestFamilyGroupNotPermitted(t *testing.T) {
	t.Parallel()
	e := startExporterAs(t, `
sources:
  - {name: mptcp, family: mptcp_pm, groups: [mptcp_pm_events], decoder: genl}
  - {name: ethtool, family: ethtool, groups: [monitor], decoder: genl}
`, &testenv.Nobody)
	mptcp := e2e.ProbeFamily(t, "", "mptcp_pm", "mptcp_pm_events")
	ethtool := e2e.ProbeFamily(t, "", "ethtool", "monitor")
	t.Logf("as uid 65534: %s; %s", mptcp, ethtool)
	e.WantFamilyAsProbed(t, "ethtool", ethtool)
	e.WantFamilyAsProbed(t, "mptcp", mptcp)
	if errors.Is(mptcp.Errs[0], unix.EPERM) {
		e.WaitLog(t, `source=mptcp family=mptcp_pm groups=mptcp_pm_events msg="Not permitted to join the family's multicast groups: they are flagged for CAP_NET_ADMIN (GENL_UNS_ADMIN_PERM) or CAP_SYS_ADMIN (GENL_ADMIN_PERM)" err="joining group mptcp_pm_events (`)
	}
}
