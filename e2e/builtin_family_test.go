package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// TestBuiltinFamilyDecoders subscribes an unprivileged exporter to the
// kernel's thermal, ACPI and quota families with their own decoders, in the
// initial network namespace, the only one that has them (see
// TestFamilySources). A kernel without one of the families, or without a
// configured group, leaves that source down with one log line: a family
// name that no kernel registers, and a group thermal does not have, stand
// for them. Which families the kernel has, and which groups uid 65534 may
// join, a probe says: each source must be as it found.
func TestBuiltinFamilyDecoders(t *testing.T) {
	t.Parallel()
	e := startExporterIn(t, testenv.HostNetns(), `
sources:
  - {name: thermal, family: thermal, groups: [event, sampling], decoder: thermal}
  - {name: acpi, family: acpi_event, groups: [acpi_mc_group], decoder: acpi}
  - {name: quota, family: VFS_DQUOT, groups: [events], decoder: quota}
  - {name: thermal_nogroup, family: thermal, groups: [nosuch], decoder: thermal}
  - {name: acpi_absent, family: acpi_event_no, groups: [acpi_mc_group], decoder: acpi}
`, "--setuid=65534", "--setgid=65534")
	for _, s := range []struct {
		name, family string
		groups       []string
	}{
		{"thermal", "thermal", []string{"event", "sampling"}},
		{"acpi", "acpi_event", []string{"acpi_mc_group"}},
		{"quota", "VFS_DQUOT", []string{"events"}},
		{"thermal_nogroup", "thermal", []string{"nosuch"}},
		{"acpi_absent", "acpi_event_no", []string{"acpi_mc_group"}},
	} {
		p := e2e.ProbeFamily(t, testenv.HostNetns(), s.family, s.groups...)
		t.Logf("as uid 65534: %s", p)
		e.WantFamilyAsProbed(t, s.name, p)
	}
	// A moment for a repeated line to show.
	time.Sleep(500 * time.Millisecond)
	mfs := e.Scrape(t)
	for _, src := range []string{"thermal_nogroup", "acpi_absent"} {
		if v, ok := e2e.Value(mfs, "kevent_source_up", "source", src); !ok || v != 0 {
			t.Errorf("source %s: kevent_source_up %v (found: %t), want 0", src, v, ok)
		}
		var n int
		for l := range strings.Lines(e.Logs.String()) {
			if strings.Contains(l, "source="+src+" ") && !strings.HasPrefix(l, "level=info ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("source %s: %d warnings and errors logged, want 1:\n%s", src, n, e.Logs)
		}
	}
	// Whatever the host's zones did meanwhile, it decoded.
	for _, src := range []string{"thermal", "acpi", "quota"} {
		if v, _ := e2e.Value(mfs, "kevent_decode_errors_total", "source", src); v != 0 {
			t.Errorf("source %s: %v decode errors", src, v)
		}
	}
	if uid := processUID(t, e.Cmd.Process.Pid); uid != "65534" {
		t.Fatalf("exporter runs as uid %s, want 65534", uid)
	}
}
