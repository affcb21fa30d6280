package e2e_test

// Tests of the exporter on a node whose interfaces come and go as pods' do
// on a Kubernetes node: thousands of veth pairs made, set up and down and
// deleted in a network namespace of the test's own, through real
// rtnetlink, read by the exporter binary. They run one at a time (not in
// parallel): they time the forgetting of series, and the machine's cores
// are theirs while they churn.

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
	"github.com/kevent-exporter/kevent_exporter/monitor"
)

// churnGroup is the interface group (IFLA_GROUP) the churned interfaces
// are made in, so that one request deletes a batch, as `ip link del group`
// does.
const churnGroup = 7

// perEventFamilies are the metrics with a series per (event, object).
var perEventFamilies = []string{
	"kevent_events_total", "kevent_event_last_value",
	"kevent_event_last_timestamp_seconds", "kevent_event_last_payload_info",
}

// labelsOf returns a series' labels.
func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

// seriesKey names a series as Prometheus tells series apart.
func seriesKey(family string, m *dto.Metric) string {
	var b strings.Builder
	b.WriteString(family)
	for _, lp := range m.GetLabel() {
		fmt.Fprintf(&b, ",%s=%q", lp.GetName(), lp.GetValue())
	}
	return b.String()
}

// eventTotals returns a source's kevent_events_total summed by event.
func eventTotals(mfs map[string]*dto.MetricFamily, source string) map[string]float64 {
	out := make(map[string]float64)
	for _, m := range mfs["kevent_events_total"].GetMetric() {
		if l := labelsOf(m); l["source"] == source {
			out[l["event"]] += m.GetCounter().GetValue()
		}
	}
	return out
}

// sourceSeries counts the series of source, of every metric.
func sourceSeries(mfs map[string]*dto.MetricFamily, source string) int {
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if labelsOf(m)["source"] == source {
				n++
			}
		}
	}
	return n
}

// scrapeUntil scrapes e, handing each scrape to seen, until cond holds.
func scrapeUntil(t *testing.T, e *e2e.Exporter, what string, seen func(start time.Time, mfs map[string]*dto.MetricFamily), cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	var mfs map[string]*dto.MetricFamily
	e2e.Eventually(t, what, func() bool {
		start := time.Now()
		mfs = e.Scrape(t)
		seen(start, mfs)
		return cond(mfs)
	}, e.Log())
	return mfs
}

// podNames returns the names of the ends of veth pair i as Kubernetes
// nodes name them: veth and 8 hex digits (Docker, the bridge plugin), cali
// and 11 (Calico). Multiplying by an odd number is a bijection, so the
// names are distinct.
func podNames(i int) (string, string) {
	return fmt.Sprintf("veth%08x", uint32(i)*2654435761), fmt.Sprintf("cali%011x", (uint64(i)*0x9e3779b97f4a7c15)&(1<<44-1))
}

// TestDefaultConfigPodChurn: with the default config's link and uevent
// sources (config/default.yml itself), 3 000 veth pairs named as pods'
// are made, set up, set down and deleted, then a pair eth9/eth9p is made
// and eth9 flapped 5 times. eth9 has its own series, with exactly its 5
// downs and its ups; the link source's totals are what the kernel counted
// (interfaces made and deleted, carrier ups and downs); the link source
// has fewer than 100 series at every scrape, and the uevent and link
// sources show fewer than 400 distinct per-event series over the run,
// scraped every second.
func TestDefaultConfigPodChurn(t *testing.T) {
	testenv.RequireRoot(t, "making network namespaces and veth pairs")
	ns := newNetns(t)
	config, err := filepath.Abs("../config/default.yml")
	if err != nil {
		t.Fatal(err)
	}
	e := startExporterArgsIn(t, ns, "--config.file="+config)
	e.WaitFor(t, 1, "kevent_source_up", "source", "link")
	e.WaitFor(t, 1, "kevent_source_up", "source", "uevent")

	// Every scrape, the periodic one and the test's own, adds its series.
	var (
		mu         sync.Mutex
		distinct   = make(map[string]bool)
		maxLink    int
		maxLinkAt  string
		scrapeFail error
	)
	record := func(_ time.Time, mfs map[string]*dto.MetricFamily) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range perEventFamilies {
			for _, m := range mfs[f].GetMetric() {
				if s := labelsOf(m)["source"]; s == "link" || s == "uevent" {
					distinct[seriesKey(f, m)] = true
				}
			}
		}
		if n := sourceSeries(mfs, "link"); n > maxLink {
			maxLink, maxLinkAt = n, time.Now().Format(time.RFC3339Nano)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopScraping := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopScraping()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case start := <-tick.C:
				mfs, err := e.TryScrape()
				if err != nil {
					mu.Lock()
					scrapeFail = err
					mu.Unlock()
					continue
				}
				record(start, mfs)
			}
		}
	}()

	r := dialRtnl(t, ns)
	const pairs, batch = 3000, 250
	want := map[string]float64{}
	began := time.Now()
	for b := 0; b < pairs/batch; b++ {
		var names, vethEnds []string
		for i := b * batch; i < (b+1)*batch; i++ {
			v, c := podNames(i)
			r.addVethIn(v, c, 0, churnGroup)
			names = append(names, v, c)
			vethEnds = append(vethEnds, v)
		}
		made := r.waitLinks(names, "made", func(linkState) bool { return true })
		r.setAll(names, true)
		r.waitLinks(names, "up", func(st linkState) bool { return st.oper == operUp })
		r.setAll(vethEnds, false)
		down := r.waitLinks(names, "down", func(st linkState) bool { return st.oper != operUp })
		// The kernel's own counts: interfaces made, carrier ups and
		// downs while they lived.
		for _, n := range names {
			want["link/new"]++
			want["link/up"] += float64(down[n].up)
			want["link/down"] += float64(down[n].down - made[n].down)
		}
		r.delGroup(churnGroup)
		left := 0
		for n := range r.links() {
			if slices.Contains(names, n) {
				left++
			}
		}
		if left > 0 {
			t.Fatalf("%d interfaces left after deleting group %d", left, churnGroup)
		}
		want["link/del"] += float64(len(names))
		// Wait for the exporter (so that its sockets never hold much): the
		// deletions are the last events of the batch.
		scrapeUntil(t, e, fmt.Sprintf("batch %d is counted", b), record, func(mfs map[string]*dto.MetricFamily) bool {
			del, _ := value(mfs, "kevent_events_total", "source", "link", "event", "link/del", "object", "")
			rm, _ := value(mfs, "kevent_events_total", "source", "uevent", "event", "net/remove", "object", "")
			return del == want["link/del"] && rm == want["link/del"]
		})
	}
	churned := time.Since(began)

	// The node's own interface.
	r.addVethIn("eth9", "eth9p", 0, 0)
	made := r.waitLinks([]string{"eth9", "eth9p"}, "made", func(linkState) bool { return true })
	r.setUp("eth9p", true)
	r.waitOper("eth9p", operLLD)
	r.setUp("eth9", true)
	r.waitOper("eth9", operUp)
	r.waitOper("eth9p", operUp)
	const flaps = 5
	for range flaps {
		r.flap("eth9", "eth9p")
	}
	now := r.links()
	for _, n := range []string{"eth9", "eth9p"} {
		want["link/new"]++
		want["link/up"] += float64(now[n].up)
		want["link/down"] += float64(now[n].down - made[n].down)
	}
	if d := now["eth9"].down - made["eth9"].down; d != flaps {
		t.Fatalf("the kernel counts %d carrier downs of eth9, want %d", d, flaps)
	}
	mfs := scrapeUntil(t, e, "eth9p's last up is counted", record, func(mfs map[string]*dto.MetricFamily) bool {
		v, _ := value(mfs, "kevent_events_total", "source", "link", "event", "link/up", "object", "eth9p")
		return v == float64(now["eth9p"].up)
	})

	got := eventTotals(mfs, "link")
	if !maps.Equal(got, want) {
		t.Errorf("link source's totals by event %v, want %v (the kernel's counts)", got, want)
	}
	for ev, n := range map[string]float64{"link/down": flaps, "link/up": float64(now["eth9"].up), "link/new": 1} {
		if v, ok := value(mfs, "kevent_events_total", "source", "link", "event", ev, "object", "eth9"); v != n {
			t.Errorf("kevent_events_total{source=link, event=%s, object=eth9} = %v (present %v), want %v", ev, v, ok, n)
		}
	}
	for _, name := range []string{"kevent_datagrams_lost_total", "kevent_decode_errors_total"} {
		for _, src := range []string{"link", "uevent"} {
			if v, ok := value(mfs, name, "source", src); !ok || v != 0 {
				t.Errorf("%s{source=%s} = %v (present %v), want 0", name, src, v, ok)
			}
		}
	}
	if v, _ := value(mfs, "kevent_events_total", "source", "link", "event", "__overflow__"); v != 0 {
		t.Errorf("%v link events overflowed", v)
	}

	stopScraping()
	mu.Lock()
	defer mu.Unlock()
	if scrapeFail != nil {
		t.Errorf("a periodic scrape failed: %v", scrapeFail)
	}
	if maxLink >= 100 {
		t.Errorf("the link source had %d series at %s, want under 100", maxLink, maxLinkAt)
	}
	if len(distinct) >= 400 {
		keys := slices.Sorted(maps.Keys(distinct))
		t.Errorf("%d distinct per-event series of the uevent and link sources over the run, want under 400; the first: %s", len(distinct), strings.Join(keys[:min(40, len(keys))], "\n"))
	}
	var events float64
	for _, src := range []string{"link", "uevent"} {
		for _, v := range eventTotals(mfs, src) {
			events += v
		}
	}
	t.Logf("%d veth pairs churned in %v; %.0f link and uevent events; %d distinct per-event series (%.2f per 1 000 events); at most %d link series at once",
		pairs, churned.Round(time.Millisecond), events, len(distinct), float64(len(distinct))*1000/events, maxLink)
}

const forgetConfig = `
sources:
  - name: link
    protocol: route
    groups: [link]
    decoder: rtnetlink
    max_events: 200
    forget_after: 1s
`

// churnObject matches the churned interfaces' names, n0 to n1999.
var churnObject = regexp.MustCompile(`^n([0-9]+)$`)

// TestForgetDeletedInterfaces: with forget_after 1s and max_events 200,
// 2 000 interfaces n0..n1999 (veth pairs) are made, set up and deleted in
// batches of 100. No series of a deleted interface is left on a scrape 3 s
// or more after a scrape showed its deletion; the bound overflows within
// a batch, but an interface made afterwards is named; and
// kevent_objects_forgotten_total counts every interface that had series.
func TestForgetDeletedInterfaces(t *testing.T) {
	testenv.RequireRoot(t, "making network namespaces and veth pairs")
	ns := newNetns(t)
	e := startExporterIn(t, ns, forgetConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "link")
	r := dialRtnl(t, ns)

	// A sentinel pair that stays: once the exporter has counted its
	// latest flip, it has counted every event before it. It is flapped
	// once first, so that its flips have series before the bound is
	// reached.
	r.addVeth("s0", "s1")
	r.setUp("s1", true)
	r.setUp("s0", true)
	r.waitOper("s0", operUp)
	r.waitOper("s1", operUp)
	r.flap("s0", "s1")
	flips := map[string]float64{"link/up": 2, "link/down": 1}
	sentinelUp := true
	e.WaitFor(t, flips["link/up"], "kevent_events_total", "source", "link", "event", "link/up", "object", "s0")

	const interfaces, batch = 2000, 100
	var (
		// deletedSeen is when a scrape that had counted batch i's
		// deletions returned.
		deletedSeen = make([]time.Time, interfaces/batch)
		seen        = make(map[string]bool)
		scrapes     int
	)
	check := func(start time.Time, mfs map[string]*dto.MetricFamily) {
		scrapes++
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				o := labelsOf(m)["object"]
				sm := churnObject.FindStringSubmatch(o)
				if sm == nil {
					continue
				}
				seen[o] = true
				i, _ := strconv.Atoi(sm[1])
				if at := deletedSeen[i/batch]; !at.IsZero() && !start.Before(at.Add(3*time.Second)) {
					t.Fatalf("scrape begun %v after the scrape that showed %s's deletion still has %s", start.Sub(at), o, seriesKey(mf.GetName(), m))
				}
			}
		}
	}
	for b := 0; b < interfaces/batch; b++ {
		var names []string
		for i := b * batch; i < (b+1)*batch; i += 2 {
			a, p := fmt.Sprintf("n%d", i), fmt.Sprintf("n%d", i+1)
			r.addVethIn(a, p, 0, churnGroup)
			names = append(names, a, p)
		}
		r.setAll(names, true)
		r.waitLinks(names, "up", func(st linkState) bool { return st.oper == operUp })
		r.delGroup(churnGroup)

		ev := "link/down"
		if !sentinelUp {
			ev = "link/up"
		}
		sentinelUp = !sentinelUp
		r.setUp("s0", sentinelUp)
		flips[ev]++
		scrapeUntil(t, e, fmt.Sprintf("batch %d's deletions are counted", b), check, func(mfs map[string]*dto.MetricFamily) bool {
			v, _ := value(mfs, "kevent_events_total", "source", "link", "event", ev, "object", "s0")
			return v == flips[ev]
		})
		deletedSeen[b] = time.Now()
	}
	// Scrapes until one begins 3 s after the last batch's deletions were
	// shown: check holds it, as every scrape, to having none of them.
	last := deletedSeen[len(deletedSeen)-1]
	e2e.Eventually(t, "a scrape begins 3 s after the last deletions were shown", func() bool {
		start := time.Now()
		check(start, e.Scrape(t))
		return !start.Before(last.Add(3 * time.Second))
	}, e.Log())

	r.addVeth("probe0", "probe1")
	r.setUp("probe1", true)
	r.setUp("probe0", true)
	r.waitOper("probe0", operUp)
	mfs := scrapeUntil(t, e, "probe0 is named", check, func(mfs map[string]*dto.MetricFamily) bool {
		v, _ := value(mfs, "kevent_events_total", "source", "link", "event", "link/up", "object", "probe0")
		return v == 1
	})
	if v, ok := value(mfs, "kevent_events_total", "source", "link", "event", "link/new", "object", "probe0"); v != 1 {
		t.Errorf("kevent_events_total{event=link/new, object=probe0} = %v (present %v), want 1", v, ok)
	}
	overflow, _ := value(mfs, "kevent_events_total", "source", "link", "event", "__overflow__")
	if overflow == 0 {
		t.Errorf("nothing overflowed: the test does not show that naming resumes after the bound was reached")
	}
	forgotten, ok := value(mfs, "kevent_objects_forgotten_total", "source", "link")
	if !ok || forgotten != float64(len(seen)) {
		t.Errorf("kevent_objects_forgotten_total = %v (present %v), want %d: every deleted interface a scrape showed", forgotten, ok, len(seen))
	}
	if v, _ := value(mfs, "kevent_source_event_names", "source", "link"); v >= 200 {
		t.Errorf("kevent_source_event_names = %v after every deleted interface was forgotten", v)
	}
	t.Logf("%d scrapes; %d of %d deleted interfaces had series, all forgotten; %v events overflowed", scrapes, len(seen), interfaces, overflow)
}

const renameConfig = `
sources:
  - {name: link, protocol: route, groups: [link], decoder: rtnetlink, forget_after: 1h}
  - {name: link0, protocol: route, groups: [link], decoder: rtnetlink, forget_after: 0s}
`

// TestRenameAndIndexReuse: a renamed interface's later events are about
// its new name, and its former name is forgotten (at once with forget_after
// 0s); a new interface on the index of a deleted one, under the same name,
// counts from zero however long the old one's series are kept.
func TestRenameAndIndexReuse(t *testing.T) {
	testenv.RequireRoot(t, "making network namespaces and veth pairs")
	ns := newNetns(t)
	e := startExporterIn(t, ns, renameConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "link")
	e.WaitFor(t, 1, "kevent_source_up", "source", "link0")
	r := dialRtnl(t, ns)

	r.addVeth("n1", "n1p")
	r.setUp("n1p", true)
	r.setUp("n1", true)
	r.waitOper("n1", operUp)
	r.waitOper("n1p", operUp)
	r.setUp("n1", false) // a veth is renamed down
	r.waitOper("n1", operDown)
	r.waitOper("n1p", operLLD)
	r.rename("n1", "n1b")
	r.setUp("n1b", true)
	r.waitOper("n1b", operUp)
	r.waitOper("n1p", operUp)
	r.flap("n1b", "n1p")
	// The ends' notifications come in either order: wait for both.
	for _, src := range []string{"link", "link0"} {
		e.WaitFor(t, 2, "kevent_events_total", "source", src, "event", "link/up", "object", "n1b")
		e.WaitFor(t, 3, "kevent_events_total", "source", src, "event", "link/up", "object", "n1p")
		e.WaitFor(t, 1, "kevent_event_last_payload_info", "source", src, "event", "link/rename", "object", "n1b", "payload", "n1")
	}
	// One scrape showed n1's series on link0; the next has forgotten them.
	mfs := e.Scrape(t)
	if got, want := eventCounts(mfs, "link"), map[string]float64{
		"link/new n1": 1, "link/up n1": 1, "link/down n1": 1,
		"link/rename n1b": 1, "link/up n1b": 2, "link/down n1b": 1,
		"link/new n1p": 1, "link/up n1p": 3, "link/down n1p": 2,
	}; !maps.Equal(got, want) {
		t.Errorf("source link: events %v, want %v", got, want)
	}
	for k := range eventCounts(mfs, "link0") {
		if strings.HasSuffix(k, " n1") {
			t.Errorf("source link0 (forget_after 0s): %s is still there on the second scrape after the rename", k)
		}
	}
	if v, _ := value(mfs, "kevent_objects_forgotten_total", "source", "link0"); v != 1 {
		t.Errorf("kevent_objects_forgotten_total{source=link0} = %v, want 1", v)
	}

	// x1 on index 4242, flapped, deleted, and made again on 4242.
	const index = 4242
	r.addVethIn("x1", "x1p", index, 0)
	r.setUp("x1p", true)
	r.setUp("x1", true)
	r.waitOper("x1", operUp)
	r.flap("x1", "x1p")
	r.flap("x1", "x1p")
	r.delLink("x1")
	e.WaitFor(t, 1, "kevent_events_total", "source", "link", "event", "link/del", "object", "x1")
	if got := eventCounts(e.Scrape(t), "link"); got["link/up x1"] != 3 || got["link/down x1"] != 3 {
		t.Fatalf("x1's first life: %v", got)
	}
	r.addVethIn("x1", "x1p", index, 0)
	if i, _, _ := r.link("x1"); i != index {
		t.Fatalf("x1 made again on index %d, want %d", i, index)
	}
	r.setUp("x1p", true)
	r.setUp("x1", true)
	r.waitOper("x1", operUp)
	r.waitOper("x1p", operUp)
	e.WaitFor(t, 1, "kevent_events_total", "source", "link", "event", "link/up", "object", "x1p")
	e.WaitFor(t, 1, "kevent_events_total", "source", "link", "event", "link/up", "object", "x1")
	got := eventCounts(e.Scrape(t), "link")
	for k, want := range map[string]float64{"link/new x1": 1, "link/up x1": 1, "link/down x1": 0, "link/del x1": 0} {
		if got[k] != want {
			t.Errorf("x1 again on index %d: %s = %v, want %v (all: %v)", index, k, got[k], want, got)
		}
	}
}

// TestMonitorEventObjectFilters: kevent_exporter monitor --event and
// --object print only the events whose name and object they match, whole.
func TestMonitorEventObjectFilters(t *testing.T) {
	testenv.RequireRoot(t, "making network namespaces and veth pairs")
	ns := newNetns(t)
	var stdout, stderr syncbuf.Buffer
	cmd := exec.Command("nsenter", "--net="+ns, "--", exporterBinary, "monitor", "--source=link",
		"--event=link/(new|up)", "--object=mo1", "--count=2", "--timeout=20s")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	e2e.Eventually(t, "the monitor's link source is up", func() bool { return strings.Contains(stdout.String(), " link !up ") })
	r := dialRtnl(t, ns)
	r.addVeth("mo0", "mo1")
	r.setUp("mo1", true)
	r.setUp("mo0", true)
	r.waitOper("mo0", operUp)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("monitor: %v; stderr:\n%s", err, &stderr)
		}
	case <-time.After(e2e.Timeout):
		cmd.Process.Kill()
		t.Fatalf("monitor still running; output:\n%s", &stdout)
	}
	var events []string
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && !strings.HasPrefix(f[2], "!") {
			events = append(events, f[2]+" "+f[3])
		}
	}
	sort.Strings(events)
	if want := []string{"link/new object=mo1", "link/up object=mo1"}; !slices.Equal(events, want) {
		t.Errorf("events printed %q, want %q; output:\n%s", events, want, &stdout)
	}

	// A pattern that does not compile is refused before anything runs.
	out, err := exec.Command(exporterBinary, "monitor", "--object=eth(").CombinedOutput()
	if code := exitCode(err); code != monitor.ExitError || !strings.Contains(string(out), "--object: error parsing regexp") {
		t.Errorf("monitor --object='eth(': exit %d, output %q", code, out)
	}
}

// exitCode returns a command's exit status from its error.
func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
