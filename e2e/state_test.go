package e2e_test

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"
)

// TestSourceStates runs an unprivileged exporter on a source in each
// state: kevent_source_state tells a source waiting for its module from
// one denied a privilege and one that failed, kevent_source_required
// repeats the configuration, and kevent_source_attachments_total counts
// the sources that attached.
func TestSourceStates(t *testing.T) {
	t.Parallel()
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 29); err == nil {
		unix.Close(fd)
		t.Fatal("netlink protocol 29 is registered on this host; this test needs it unregistered")
	}
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_XFRM); err != nil {
		t.Fatalf("this test needs NETLINK_XFRM registered on the host: %v", err)
	} else {
		unix.Close(fd)
	}
	type sourceWant struct {
		state    string
		required float64
	}
	want := map[string]sourceWant{
		"uevent": {"up", 1},
		"seed":   {"waiting", 1},
		"kevent": {"waiting", 0},
		"xfrm":   {"denied", 0},
		"mptcp":  {"denied", 0},
		"route":  {"failed", 0},
		"nlctrl": {"failed", 0},
	}
	// A kernel without MPTCP has no mptcp_pm family: the source waits.
	if !hasFamily(t, "mptcp_pm") {
		t.Log("no mptcp_pm family: the family's denial goes unchecked")
		want["mptcp"] = sourceWant{"waiting", 0}
	}
	e := startExporterAs(t, `
sources:
  - {name: uevent, protocol: kobject_uevent, groups: [1], decoder: uevent, required: true}
  # No module: waiting, whether required or not.
  - {name: seed, protocol: 29, groups: [2], decoder: raw, required: true}
  - {name: kevent, family: kevent, groups: [events], decoder: kevent}
  # Joining needs CAP_NET_ADMIN: denied.
  - {name: xfrm, protocol: xfrm, groups: [1], decoder: raw}
  - {name: mptcp, family: mptcp_pm, groups: [mptcp_pm_events], decoder: genl}
  # Groups that do not exist: failed.
  - {name: route, protocol: route, groups: [1000], decoder: raw}
  - {name: nlctrl, family: nlctrl, groups: [nosuch], decoder: genl}
`, &syscall.Credential{Uid: 65534, Gid: 65534})
	for src, w := range want {
		e.WaitFor(t, 1, "kevent_source_state", "source", src, "state", w.state)
	}
	mfs := e.Scrape(t)
	for src, w := range want {
		for _, st := range []string{"up", "waiting", "denied", "failed"} {
			v, ok := value(mfs, "kevent_source_state", "source", src, "state", st)
			if want := map[bool]float64{true: 1}[st == w.state]; !ok || v != want {
				t.Errorf("kevent_source_state{source=%s,state=%s} = %v (present %v), want %v", src, st, v, ok, want)
			}
		}
		checks := []struct {
			name string
			want float64
		}{
			{"kevent_source_up", map[bool]float64{true: 1}[w.state == "up"]},
			{"kevent_source_required", w.required},
			{"kevent_source_attachments_total", map[bool]float64{true: 1}[w.state == "up"]},
		}
		for _, c := range checks {
			if v, ok := value(mfs, c.name, "source", src); !ok || v != c.want {
				t.Errorf("%s{source=%s} = %v (present %v), want %v", c.name, src, v, ok, c.want)
			}
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprint(e.Logs))
	}
}

// hasFamily reports whether this namespace has the generic netlink family.
func hasFamily(t *testing.T, name string) bool {
	t.Helper()
	c, err := genetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.GetFamily(name)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		t.Fatal(err)
	}
	return err == nil
}
