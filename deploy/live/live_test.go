// Package live runs the Grafana dashboard's queries and the alerting rules
// against a real Prometheus (Debian's prometheus, as the exporter's own
// tests use) scraping a real exporter built from the parent directory, in a
// network namespace of the package's own (internal/testenv): every source
// of the exporter is brought into the state an alert is about, and every
// query must return data.
package live

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/deploy/internal/monitoring"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

var exporterBinary string

func TestMain(m *testing.M) {
	e2e.TestMain(m, "../..", &exporterBinary)
}

const (
	dashboardFile = "../grafana/kevent-exporter.json"
	rulesFile     = "../prometheus/kevent_exporter.rules.yml"
	examplesFile  = "../prometheus/kevent_exporter.examples.rules.yml"
)

// The sources, each on a NETLINK_USERSOCK group of its own where the test
// sends (the namespace is the package's own), and each for one alert.
const exporterConfig = `
sources:
  # net/change uevents of the namespace's lo.
  - {name: uevent, protocol: kobject_uevent, groups: [1], decoder: uevent}
  # Numbered messages in the reference module's format: a gap, a late
  # message and a malformed one (KeventSequenceGap, KeventDecodeErrors).
  - {name: seq, protocol: usersock, groups: [1], decoder: kevent}
  # Three names with max_events 3: tick, 17, then __overflow__
  # (KeventEventNamesOverflow).
  - {name: raw, protocol: usersock, groups: [2], decoder: raw, event_names: {16: tick}, max_events: 3}
  # Trusts only the kernel: the test's datagrams are forged
  # (KeventDatagramsRejected).
  - {name: forged, protocol: usersock, groups: [3], decoder: raw, senders: kernel}
  # A tiny receive buffer, flooded while the exporter is stopped
  # (KeventDatagramsLost, KeventReceiveOverruns).
  - {name: flood, protocol: usersock, groups: [4], decoder: raw, receive_buffer_bytes: 4096}
  # A protocol no one registers: waiting for its module, no alert.
  - {name: down, protocol: 31, groups: [1], decoder: raw}
  # The same, required (KeventSourceRequiredMissing).
  - {name: required, protocol: 30, groups: [1], decoder: raw, required: true}
  # A group route does not have (KeventSourceFailed).
  - {name: broken, protocol: route, groups: [1000], decoder: raw}
  # The namespace's connections: Prometheus's scrapes, those of the dead
  # target refused, all ended by a flush (the conntrack panel).
  - {name: conntrack, protocol: netfilter, groups: [conntrack_new, conntrack_destroy], decoder: conntrack}
  # The drop monitor, whose family is the initial namespace's: waiting,
  # with its kevent_kernel_lost_total for the dashboard's drop panels.
  - {name: drops, family: NET_DM, groups: [events], decoder: drop_monitor}
`

// unprivilegedConfig is the second exporter's, run as uid 65534 without
// capabilities: joining xfrm's groups is denied (KeventSourceDenied).
const unprivilegedConfig = `
sources:
  - {name: xfrm, protocol: xfrm, groups: [1], decoder: raw}
`

// sourcePanels are the dashboard's panels of the xfrm and audit sources'
// events, which need privileges and kernel traffic this test does not
// make: the exporter's host tests count those events
// (ipsec_audit_test.go), and the dashboard's own test parses the queries;
// and the drop monitor's, which no drop monitor sends here: the VM test
// counts them (vmtest/dropmon_test.go).
var sourcePanels = map[string]bool{
	"IPsec events by tunnel and policy":                    true,
	"Audit: denials, crashes and seccomp kills per minute": true,
	"Packet drops by reason":                               true,
}

// TestLive brings one exporter into every state the alerts are about,
// under a Prometheus that scrapes it (and a target that does not answer)
// every second and evaluates the rules files every second, then checks the
// dashboard and the alerts against it.
func TestLive(t *testing.T) {
	testenv.RequireRoot(t, "the exporter's sources are fed on NETLINK_USERSOCK and lo in a private network namespace")
	e := e2e.Start(t, e2e.Options{Binary: exporterBinary, Config: exporterConfig})
	for _, s := range []string{"uevent", "seq", "raw", "forged", "flood", "conntrack"} {
		e.WaitFor(t, 1, "kevent_source_up", "source", s)
	}
	// A rule on conntrack state switches connection tracking on in the
	// namespace: from here on its connections are tracked, with events.
	iptables := command(t, "iptables-legacy")
	if out, err := exec.Command(iptables, "-w", "-A", "INPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "ACCEPT").CombinedOutput(); err != nil {
		t.Fatalf("switching connection tracking on: %v: %s", err, out)
	}
	for src, state := range map[string]string{"down": "waiting", "required": "waiting", "broken": "failed", "drops": "waiting"} {
		e.WaitFor(t, 1, "kevent_source_state", "source", src, "state", state)
	}
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_XFRM); err != nil {
		t.Fatalf("this test needs NETLINK_XFRM registered, for a source only CAP_NET_ADMIN may join: %v", err)
	} else {
		unix.Close(fd)
	}
	unpriv := e2e.Start(t, e2e.Options{Binary: exporterBinary, Config: unprivilegedConfig, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}})
	unpriv.WaitFor(t, 1, "kevent_source_state", "source", "xfrm", "state", "denied")
	unprivTarget := strings.TrimPrefix(unpriv.URL, "http://")

	rules, _ := filepath.Abs(rulesFile)
	examples, _ := filepath.Abs(examplesFile)
	exporterTarget := strings.TrimPrefix(e.URL, "http://")
	deadTarget := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	prom := startPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [%q, %q]
scrape_configs:
  - job_name: kevent-exporter
    static_configs:
      - targets: [%q, %q, %q]
`, rules, examples, exporterTarget, unprivTarget, deadTarget))

	send := map[string]*nlsend.Sender{}
	for name, group := range map[string]uint32{"seq": 1, "raw": 2, "forged": 3, "flood": 4} {
		s, err := nlsend.NewSender(unix.NETLINK_USERSOCK, group)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		send[name] = s
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	kevent := func(seq uint64, name string, value int64) []byte {
		return nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: seq, Instance: 7, Name: name, Value: value, Payload: "payload " + name})
	}
	raw := func(typ uint16, payload string) []byte { return nlsend.AppendMessage(nil, typ, 0, []byte(payload)) }

	// The baseline: every series exists, scraped at least twice, so that
	// increase() sees what follows.
	must(send["seq"].Send(kevent(1, "boot", 1)))
	must(send["raw"].Send(raw(16, "5")))
	must(send["flood"].Send(raw(16, "1")))
	must(testenv.WriteUevent("lo", "change"))
	e.WaitFor(t, 1, "kevent_events_total", "source", "seq", "event", "boot")
	e.WaitFor(t, 1, "kevent_events_total", "source", "raw", "event", "tick")
	e.WaitFor(t, 1, "kevent_events_total", "source", "flood", "event", "16")
	e.WaitFor(t, 1, "kevent_events_total", "source", "uevent", "event", "net/change")
	e2e.Eventually(t, "the conntrack source counts Prometheus's connections and the dead target's refusals", func() bool {
		mfs, err := e.TryScrape()
		if err != nil {
			return false
		}
		return e2e.Sum(mfs, "kevent_events_total", "source", "conntrack", "event", "new/tcp") > 0 &&
			e2e.Sum(mfs, "kevent_events_total", "source", "conntrack", "event", "destroy/tcp/unreplied/close") > 0
	})
	// The flush ends the connections that saw a reply.
	if out, err := exec.Command(command(t, "conntrack"), "-F").CombinedOutput(); err != nil {
		t.Fatalf("conntrack -F: %v: %s", err, out)
	}
	e2e.Eventually(t, "the conntrack source counts connections destroyed after a reply", func() bool {
		mfs, err := e.TryScrape()
		if err != nil {
			return false
		}
		return e2e.Sum(mfs, "kevent_events_total", "source", "conntrack", "event", "destroy/tcp/established") > 0
	})
	waitQuery(t, prom, "each source's series scraped twice since the baseline",
		`min(count_over_time(kevent_datagrams_lost_total[1m])) >= 2 and min(count_over_time(kevent_sequence_missing_total[1m])) >= 2`,
		func(s []sample) bool { return len(s) == 1 })

	// Each alert's cause.
	for _, seq := range []uint64{2, 3, 7, 5} { // 4, 5, 6 missing, then 5 late
		must(send["seq"].Send(kevent(seq, "tick", int64(seq))))
	}
	must(send["seq"].Send(nlsend.AppendMessage(nil, 0x10, 8, []byte{0xff, 0xff, 1, 0}))) // an attribute longer than its message
	e.WaitFor(t, 3, "kevent_sequence_missing_total", "source", "seq")
	e.WaitFor(t, 1, "kevent_sequence_reordered_total", "source", "seq")
	e.WaitFor(t, 1, "kevent_decode_errors_total", "source", "seq")
	must(send["raw"].Send(raw(17, "6")))
	must(send["raw"].Send(raw(18, "7")))
	e.WaitFor(t, 1, "kevent_events_total", "source", "raw", "event", "__overflow__")
	must(send["forged"].Send(raw(16, "forged")))
	e.WaitFor(t, 1, "kevent_datagrams_rejected_total", "source", "forged", "reason", "not_kernel")
	// The flood: 3000 datagrams at a stopped exporter's 8 KiB buffer.
	e.Signal(t, syscall.SIGSTOP)
	for i := range 3000 {
		if err := send["flood"].Send(raw(16, strconv.Itoa(i))); err != nil {
			e.Signal(t, syscall.SIGCONT)
			t.Fatal(err)
		}
	}
	e.Signal(t, syscall.SIGCONT)
	e2e.Eventually(t, "the flood source counts lost datagrams and an overrun", func() bool {
		mfs, err := e.TryScrape()
		if err != nil {
			return false
		}
		lost, _ := e2e.Value(mfs, "kevent_datagrams_lost_total", "source", "flood")
		overruns, _ := e2e.Value(mfs, "kevent_receive_overruns_total", "source", "flood")
		return lost > 0 && overruns > 0
	})
	// A configuration that does not load: the reload fails, the exporter
	// runs on.
	must(os.WriteFile(e.ConfigFile, []byte("sources: [\n"), 0o644))
	if code, body := e2e.Post(t, e.URL+"/-/reload"); code == 200 {
		t.Fatalf("reload of a broken configuration answered %d %s", code, body)
	}
	e.WaitFor(t, 0, "kevent_config_last_reload_successful")
	mfs := e.Scrape(t)

	// Each source in one state, as Prometheus sees it.
	t.Run("source states", func(t *testing.T) {
		want := "broken=failed conntrack=up down=waiting drops=waiting flood=up forged=up raw=up required=waiting seq=up uevent=up xfrm=denied"
		var got []string
		ok := poll(func() bool {
			s, err := prom.query(`kevent_source_state == 1`)
			if err != nil {
				return false
			}
			got = nil
			for _, x := range s {
				got = append(got, x.Metric["source"]+"="+x.Metric["state"])
			}
			sort.Strings(got)
			return strings.Join(got, " ") == want
		})
		if !ok {
			t.Fatalf("kevent_source_state == 1: %s, want %s", strings.Join(got, " "), want)
		}
	})

	t.Run("alerts", func(t *testing.T) {
		// Alerts with a "for" are pending for minutes: their conditions
		// hold. The others fire.
		want := []string{
			"KeventConfigReloadFailed pending instance=" + exporterTarget,
			"KeventDatagramsLost firing source=flood",
			"KeventDatagramsRejected firing source=forged reason=not_kernel",
			"KeventDecodeErrors firing source=seq",
			"KeventEventNamesOverflow firing source=raw",
			"KeventExporterDown pending instance=" + deadTarget,
			"KeventReceiveOverruns firing source=flood",
			"KeventSequenceGap firing source=seq",
			"KeventSourceDenied pending source=xfrm instance=" + unprivTarget,
			"KeventSourceFailed pending source=broken",
			"KeventSourceRequiredMissing pending source=required",
		}
		var got []string
		var active []alert
		ok := poll(func() bool {
			var err error
			active, err = prom.alerts()
			if err != nil {
				return false
			}
			got = nil
			for _, a := range active {
				got = append(got, alertKey(a, exporterTarget))
			}
			sort.Strings(got)
			return strings.Join(got, "\n") == strings.Join(want, "\n")
		})
		if !ok {
			t.Fatalf("active alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, a := range active {
			d := a.Annotations["description"]
			if strings.Contains(d, "<no value>") || strings.Contains(d, "{{") || !strings.Contains(d, a.Labels["instance"]) {
				t.Errorf("%s: description %q", a.Labels["alertname"], d)
			}
		}
	})

	t.Run("rules evaluate without errors", func(t *testing.T) {
		var states []ruleState
		ok := poll(func() bool {
			var err error
			states, err = prom.rules()
			if err != nil || len(states) == 0 {
				return false
			}
			for _, r := range states {
				if r.Health != "ok" {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("rules: %+v", states)
		}
		for _, f := range []string{rulesFile, examplesFile} {
			rs, err := monitoring.LoadRules(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if !hasRule(states, r.Alert) {
					t.Errorf("Prometheus did not load %s", r.Alert)
				}
			}
		}
	})

	// Every metric a query or rule names is one the exporter exposes (or
	// Prometheus's own up), and every selector matches series in
	// Prometheus, but those of the example rules, written for sources to
	// come.
	t.Run("metrics named exist", func(t *testing.T) {
		exposed := map[string]bool{"up": true}
		for name := range mfs {
			exposed[name] = true
		}
		check := func(what, expr string, mustMatch bool) {
			e, err := monitoring.Parse(expr)
			if err != nil {
				t.Errorf("%s: %v", what, err)
				return
			}
			names, err := monitoring.MetricNames(e)
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			for _, n := range names {
				if !exposed[n] {
					t.Errorf("%s: %s is not a metric the exporter exposes", what, n)
				}
			}
			if !mustMatch {
				return
			}
			for _, vs := range monitoring.Selectors(e) {
				sel := vs.String()
				if !poll(func() bool { s, err := prom.query("count(" + sel + ")"); return err == nil && len(s) == 1 }) {
					t.Errorf("%s: %s matches no series", what, sel)
				}
			}
		}
		d, err := monitoring.LoadDashboard(dashboardFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range d.Queries() {
			expr, err := monitoring.Substitute(q.Expr)
			if err != nil {
				t.Error(err)
				continue
			}
			check(q.String(), expr, !sourcePanels[q.Panel])
		}
		for _, f := range []string{rulesFile, examplesFile} {
			rs, err := monitoring.LoadRules(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				check(r.Alert, r.Expr, f == rulesFile)
			}
		}
	})

	t.Run("dashboard queries return data", func(t *testing.T) {
		d, err := monitoring.LoadDashboard(dashboardFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			sel, label, err := monitoring.VariableQuery(v.Query)
			if err != nil {
				t.Error(err)
				continue
			}
			sel, err = monitoring.Substitute(sel)
			if err != nil {
				t.Error(err)
				continue
			}
			var values []string
			poll(func() bool {
				values, err = prom.labelValues(sel, label)
				return err == nil && len(values) > 0
			})
			sort.Strings(values)
			want := map[string][]string{
				"job":      {"kevent-exporter"},
				"instance": sorted(exporterTarget, unprivTarget),
				"source":   {"broken", "conntrack", "down", "drops", "flood", "forged", "raw", "required", "seq", "uevent", "xfrm"},
			}[v.Name]
			if strings.Join(values, " ") != strings.Join(want, " ") {
				t.Errorf("variable %s (%s): %v (%v), want %v", v.Name, v.Query, values, err, want)
			}
		}
		for _, q := range d.Queries() {
			expr, err := monitoring.Substitute(q.Expr)
			if err != nil {
				t.Error(err)
				continue
			}
			if sourcePanels[q.Panel] {
				t.Logf("%s: no xfrm, audit or drop monitor source here to give it data", q)
				continue
			}
			var result []sample
			ok := poll(func() bool {
				if q.Instant {
					result, err = prom.query(expr)
				} else {
					result, err = prom.queryRange(expr)
				}
				return err == nil && len(result) > 0
			})
			if !ok {
				t.Errorf("%s: %s returns no data (%v)", q, expr, err)
				continue
			}
			t.Logf("%s: %d series, e.g. %v = %s", q, len(result), result[0].Metric, result[0].Value)
		}
	})
}

// sorted returns its arguments sorted.
func sorted(s ...string) []string {
	sort.Strings(s)
	return s
}

// alertKey names an active alert by its name, state and the labels that
// tell it apart here.
func alertKey(a alert, exporterTarget string) string {
	k := a.Labels["alertname"] + " " + a.State
	for _, l := range []string{"source", "reason"} {
		if v, ok := a.Labels[l]; ok {
			k += " " + l + "=" + v
		}
	}
	if _, ok := a.Labels["source"]; !ok {
		k += " instance=" + a.Labels["instance"]
	} else if a.Labels["instance"] != exporterTarget {
		k += " instance=" + a.Labels["instance"]
	}
	return k
}

func hasRule(states []ruleState, name string) bool {
	for _, r := range states {
		if r.Name == name && r.Type == "alerting" {
			return true
		}
	}
	return false
}

// poll retries cond every 200 ms for up to 30 s (Prometheus scrapes and
// evaluates every second) and reports whether it came true.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitQuery polls an instant query until ok accepts its result.
func waitQuery(t *testing.T, p *prometheus, what, expr string, ok func([]sample) bool) {
	t.Helper()
	var s []sample
	var err error
	if !poll(func() bool { s, err = p.query(expr); return err == nil && ok(s) }) {
		t.Fatalf("waiting until %s: %s = %v (%v)", what, expr, s, err)
	}
}

// command returns the path of a command the test needs (Debian's iptables
// and conntrack, which deploy/check.sh and .ci/run install).
func command(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not in PATH: install Debian's iptables and conntrack packages: %v", name, err)
	}
	return path
}
