package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// The exporter's log messages for what an unprivileged source may meet.
const (
	msgNotPermitted       = `msg="Not permitted to subscribe to the multicast groups: run with CAP_NET_ADMIN`
	msgProtocolAbsent     = `msg="Netlink protocol not registered`
	msgFamilyNotPermitted = `msg="Not permitted to join the family's multicast groups`
	msgFamilyAbsent       = `msg="Generic netlink family not registered`
	msgGroupsAbsent       = `msg="Generic netlink family has none of the configured groups`
)

// WantAsProbed checks that source of e, an exporter that runs unprivileged
// and joins group of a netlink protocol, is what probed, the answer of
// testenv.JoinAsNobody for them, says the kernel allows: up where the probe
// joined; where the kernel refused it (EPERM), down with the line that says
// what to grant logged; where the protocol has no kernel socket, down and
// waiting for it. Any other answer fails the test, which does not know what
// to expect of it.
func (e *Exporter) WantAsProbed(t testing.TB, source string, group uint32, probed error) {
	t.Helper()
	switch {
	case probed == nil:
		e.WaitFor(t, 1, "kevent_source_up", "source", source)
		return
	case errors.Is(probed, unix.EPERM):
		e.waitSourceLog(t, source, msgNotPermitted, fmt.Sprintf(`err="joining group %d: operation not permitted"`, group))
	case errors.Is(probed, unix.EPROTONOSUPPORT):
		e.waitSourceLog(t, source, msgProtocolAbsent)
	default:
		t.Fatalf("source %s: the probe found %v: no behaviour of the exporter is known for it", source, probed)
	}
	e.WaitFor(t, 0, "kevent_source_up", "source", source)
}

// FamilyProbe is what testenv.JoinFamilyAsNobody answered for each group of
// a family that a source joins.
type FamilyProbe struct {
	Family string
	Groups []string
	Errs   []error
}

// ProbeFamily probes each group of family in netns (testenv.JoinFamilyAsNobody).
func ProbeFamily(t testing.TB, netns, family string, groups ...string) FamilyProbe {
	t.Helper()
	p := FamilyProbe{Family: family, Groups: groups}
	for _, g := range groups {
		p.Errs = append(p.Errs, testenv.JoinFamilyAsNobody(t, netns, family, g))
	}
	return p
}

// Joinable returns how many of the groups the probe joined.
func (p FamilyProbe) Joinable() int {
	n := 0
	for _, err := range p.Errs {
		if err == nil {
			n++
		}
	}
	return n
}

// all reports whether every answer is target or, if also is set, also.
func (p FamilyProbe) all(target, also error) bool {
	for _, err := range p.Errs {
		if !errors.Is(err, target) && (also == nil || !errors.Is(err, also)) {
			return false
		}
	}
	return true
}

func (p FamilyProbe) String() string {
	var s []string
	for i, g := range p.Groups {
		answer := "joined"
		if p.Errs[i] != nil {
			answer = p.Errs[i].Error()
		}
		s = append(s, fmt.Sprintf("%s/%s: %s", p.Family, g, answer))
	}
	return strings.Join(s, ", ")
}

// WantFamilyAsProbed checks that source of e, an exporter that runs
// unprivileged and joins the groups of a generic netlink family, is what
// the probe p says the kernel allows: up and joined to as many groups as
// the probe joined; where it joined none, down with the reason logged (the
// family or its groups absent, or joining refused).
func (e *Exporter) WantFamilyAsProbed(t testing.TB, source string, p FamilyProbe) {
	t.Helper()
	if n := p.Joinable(); n > 0 {
		e.WaitFor(t, 1, "kevent_source_up", "source", source)
		e.WaitFor(t, float64(n), "kevent_source_groups_joined", "source", source)
		return
	}
	switch {
	case p.all(unix.ENOENT, nil):
		e.waitSourceLog(t, source, msgFamilyAbsent)
	case p.all(testenv.ErrNoGroup, nil):
		e.waitSourceLog(t, source, msgGroupsAbsent)
	case p.all(unix.EPERM, testenv.ErrNoGroup):
		e.waitSourceLog(t, source, msgFamilyNotPermitted)
	default:
		t.Fatalf("source %s: the probe found %s: no behaviour of the exporter is known for it", source, p)
	}
	e.WaitFor(t, 0, "kevent_source_up", "source", source)
}

// waitSourceLog waits until the exporter logs a line about source that
// contains each of parts.
func (e *Exporter) waitSourceLog(t testing.TB, source string, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		for l := range strings.Lines(e.Logs.String()) {
			if lineHas(l, "source="+source+" ", parts) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for a line about source %s with %s; log:\n%s", Timeout, source, strings.Join(parts, " and "), e.Logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lineHas reports whether log line l has source and each of parts.
func lineHas(l, source string, parts []string) bool {
	if !strings.Contains(l, source) {
		return false
	}
	for _, p := range parts {
		if !strings.Contains(l, p) {
			return false
		}
	}
	return true
}
