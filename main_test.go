package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
)

// These tests run the exporter binary against the host kernel's netlink and
// read its /metrics over HTTP. NETLINK_USERSOCK groups 25-29 are this
// package's, so that other packages' tests, run in parallel, stay apart;
// tests that send on a group own it (25 counts, 26-27 reload, 28 lint,
// 29 Prometheus), those that only bind may share 28.

var exporterBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kevent_exporter_test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Executable by an unprivileged exporter too.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exporterBinary = filepath.Join(dir, "kevent_exporter")
	if out, err := exec.Command("go", "build", "-o", exporterBinary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building exporter: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type exporter struct {
	cmd        *exec.Cmd
	url        string
	configFile string
	logs       *syncbuf.Buffer
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startExporter runs the exporter on config (the embedded default if
// empty) and waits until it serves. At the end of the test it is stopped
// with SIGTERM and must exit cleanly.
func startExporter(t *testing.T, config string) *exporter {
	t.Helper()
	return startExporterAs(t, config, nil)
}

// startExporterAs is startExporter with the process's credentials.
func startExporterAs(t *testing.T, config string, cred *syscall.Credential) *exporter {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := &exporter{url: "http://" + addr, logs: &syncbuf.Buffer{}}
	args := []string{"--web.listen-address=" + addr}
	if config != "" {
		dir := t.TempDir()
		// Readable by an unprivileged exporter too.
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		e.configFile = filepath.Join(dir, "config.yml")
		if err := os.WriteFile(e.configFile, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config.file="+e.configFile)
	}
	e.cmd = exec.Command(exporterBinary, args...)
	e.cmd.Stderr = e.logs
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{})
	go func() {
		exitErr = e.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
			return // already reported
		default:
		}
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if exitErr != nil {
				t.Errorf("exporter exited with %v after SIGTERM; log:\n%s", exitErr, e.logs)
			}
		case <-time.After(10 * time.Second):
			_ = e.cmd.Process.Kill()
			t.Errorf("exporter still running 10s after SIGTERM; log:\n%s", e.logs)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(e.url + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e
			}
		}
		select {
		case <-exited:
			t.Fatalf("exporter exited: %v; log:\n%s", exitErr, e.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("exporter not serving after 10s; log:\n%s", e.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape fetches and parses /metrics.
func (e *exporter) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value returns the value of the series of name with labels, given as
// name=value pairs, and whether it exists.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := make(map[string]string)
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// waitFor scrapes until the series has want, failing after 10s.
func (e *exporter) waitFor(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok := value(e.scrape(t), name, labels...)
		if ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (present %v), want %v; log:\n%s", name, labels, v, ok, want, e.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sender(t *testing.T, group uint32) *nlsend.Sender {
	t.Helper()
	s, err := nlsend.NewSender(unix.NETLINK_USERSOCK, group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestUsersockMessagesCounted(t *testing.T) {
	t.Parallel()
	e := startExporter(t, `
sources:
  - name: users
    protocol: usersock
    groups: [25]
    decoder: raw
    event_names: {16: tick}
`)
	e.waitFor(t, 1, "kevent_source_up", "source", "users")
	snd := sender(t, 25)
	const n = 5000
	for i := 1; i <= n; i++ {
		if err := snd.Send(nlsend.AppendMessage(nil, 16, uint32(i), []byte(fmt.Sprintf("%d\x00", i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := snd.Send(nlsend.AppendMessage(nil, unix.NLMSG_DONE, 0, []byte("Hello from kernel"))); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, 1, "kevent_events_total", "source", "users", "event", "done")
	mfs := e.scrape(t)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"kevent_events_total", []string{"source", "users", "event", "tick"}, n},
		{"kevent_event_last_value", []string{"source", "users", "event", "tick"}, n},
		{"kevent_event_last_payload_info", []string{"source", "users", "event", "tick", "payload", fmt.Sprint(n)}, 1},
		{"kevent_event_last_payload_info", []string{"source", "users", "event", "done", "payload", "Hello from kernel"}, 1},
		{"kevent_messages_lost_total", []string{"source", "users"}, 0},
		{"kevent_decode_errors_total", []string{"source", "users"}, 0},
	} {
		if v, ok := value(mfs, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if n := len(mfs["kevent_event_last_payload_info"].GetMetric()); n != 2 {
		t.Errorf("%d payload info series, want 2 (one per event)", n)
	}
	if _, ok := value(mfs, "kevent_event_last_timestamp_seconds", "source", "users", "event", "tick"); !ok {
		t.Error("no kevent_event_last_timestamp_seconds for tick")
	}
}

// TestDefaultConfig runs the embedded default configuration: the uevent
// source counts real uevents, and the seed source, whose protocol nobody
// has registered on this host, is down with a clear log line.
func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 29); err == nil {
		unix.Close(fd)
		t.Fatal("netlink protocol 29 is registered on this host; this test needs it unregistered")
	}
	e := startExporter(t, "")
	e.waitFor(t, 1, "kevent_source_up", "source", "uevent")

	const k = 7
	before, _ := value(e.scrape(t), "kevent_events_total", "source", "uevent", "event", "net/change")
	for i := 0; i < k; i++ {
		if err := os.WriteFile("/sys/class/net/lo/uevent", []byte("change"), 0o200); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor(t, before+k, "kevent_events_total", "source", "uevent", "event", "net/change")
	mfs := e.scrape(t)
	if v, ok := value(mfs, "kevent_event_last_payload_info", "source", "uevent", "event", "net/change", "payload", "/devices/virtual/net/lo"); !ok || v != 1 {
		t.Errorf("no payload info for lo's devpath")
	}
	// Stable: no extra events arrive later.
	time.Sleep(300 * time.Millisecond)
	e.waitFor(t, before+k, "kevent_events_total", "source", "uevent", "event", "net/change")

	const want = `msg="Netlink protocol not registered: the kernel module that provides it is not loaded; waiting for it"`
	for _, src := range []string{"seed", "kevent"} {
		if v, ok := value(mfs, "kevent_source_up", "source", src); !ok || v != 0 {
			t.Errorf("kevent_source_up{source=%s} = %v (present %v), want 0", src, v, ok)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "source="+src+" protocol=29 groups=[2] "+want) {
			t.Errorf("log lacks %s for source %s:\n%s", want, src, logs)
		}
	}
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReload(t *testing.T) {
	t.Parallel()
	const first = `
sources:
  - name: a
    protocol: usersock
    groups: [26]
    decoder: raw
`
	e := startExporter(t, first)
	e.waitFor(t, 1, "kevent_source_up", "source", "a")
	snd := sender(t, 26)
	send := func() {
		if err := snd.Send(nlsend.AppendMessage(nil, 17, 0, []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	send()
	e.waitFor(t, 1, "kevent_events_total", "source", "a", "event", "17")

	// A bad file is rejected; the old configuration keeps running.
	if err := os.WriteFile(e.configFile, []byte(first+"    bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := post(t, e.url+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, `unknown key "bogus" in source`) {
		t.Fatalf("POST /-/reload with a bad file: %d %q, want 500 naming the key", code, body)
	}
	e.waitFor(t, 0, "kevent_config_last_reload_successful")
	send()
	e.waitFor(t, 2, "kevent_events_total", "source", "a", "event", "17")

	// SIGHUP with a good file adds a source and keeps the unchanged one,
	// with its counts.
	second := first + `
  - name: b
    protocol: usersock
    groups: [27]
    decoder: raw
`
	if err := os.WriteFile(e.configFile, []byte(second), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, 1, "kevent_config_last_reload_successful")
	e.waitFor(t, 1, "kevent_source_up", "source", "b")
	send()
	e.waitFor(t, 3, "kevent_events_total", "source", "a", "event", "17")

	// POST /-/reload with a file that drops source a.
	if err := os.WriteFile(e.configFile, []byte(strings.Replace(second, "name: a", "name: c", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, e.url+"/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload: %d %q", code, body)
	}
	mfs := e.scrape(t)
	if _, ok := value(mfs, "kevent_source_up", "source", "a"); ok {
		t.Error("removed source a still reported")
	}
	if v, _ := value(mfs, "kevent_source_up", "source", "c"); v != 1 {
		t.Error("source c not up after reload")
	}
}

func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	e := startExporter(t, "sources:\n  - {name: h, protocol: usersock, groups: [28], decoder: raw}\n")
	for _, c := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/", 200, `href="/metrics"`},
		{"GET", "/-/healthy", 200, "Healthy"},
		{"GET", "/-/ready", 200, "Ready"},
		{"GET", "/-/reload", 405, "requires a POST"},
		{"GET", "/metrics", 200, "kevent_exporter_build_info"},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b), c.body) {
			t.Errorf("%s %s: %d, want %d with %q; body:\n%.300s", c.method, c.path, resp.StatusCode, c.code, c.body, b)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(good, []byte("sources:\n  - {name: g, protocol: 29, groups: [2], decoder: raw}\n"), 0o644)
	os.WriteFile(bad, []byte("sources:\n  - {name: g, protocol: 29, groups: [2], decoder: nope}\n"), 0o644)
	if out, err := exec.Command(exporterBinary, "--config.check", "--config.file="+good).CombinedOutput(); err != nil {
		t.Errorf("--config.check on a good file: %v\n%s", err, out)
	}
	out, err := exec.Command(exporterBinary, "--config.check", "--config.file="+bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown decoder \"nope\"`) {
		t.Errorf("--config.check on a bad file: %v, want failure naming the decoder\n%s", err, out)
	}
	if out, err := exec.Command(exporterBinary, "--config.check").CombinedOutput(); err != nil {
		t.Errorf("--config.check on the embedded default: %v\n%s", err, out)
	}
}

// TestSlowClientDropped checks that a client that never finishes its
// request headers is disconnected rather than holding a connection.
func TestSlowClientDropped(t *testing.T) {
	t.Parallel()
	e := startExporter(t, "sources:\n  - {name: s, protocol: usersock, groups: [28], decoder: raw}\n")
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(conn)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("server closed the stalled connection after %v", d)
	}
}

// TestNotPermitted runs the exporter unprivileged on a protocol whose kernel
// socket does not let unprivileged sockets join its groups (xfrm): the bind
// fails with EPERM, the source is down, the log says what to grant, and the
// uevent source, whose kernel socket allows unprivileged listeners, works.
func TestNotPermitted(t *testing.T) {
	t.Parallel()
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_XFRM); err != nil {
		t.Fatalf("this test needs NETLINK_XFRM registered on the host: %v", err)
	} else {
		unix.Close(fd)
	}
	e := startExporterAs(t, `
sources:
  - {name: xfrm, protocol: xfrm, groups: [1], decoder: raw}
  - {name: uevent, protocol: kobject_uevent, groups: [1], decoder: uevent}
`, &syscall.Credential{Uid: 65534, Gid: 65534})
	e.waitFor(t, 1, "kevent_source_up", "source", "uevent")
	e.waitFor(t, 0, "kevent_source_up", "source", "xfrm")
	const want = `msg="Not permitted to subscribe to the multicast groups: run with CAP_NET_ADMIN, or have the kernel socket created with NL_CFG_F_NONROOT_RECV" err="bind: operation not permitted"`
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %s:\n%s", want, e.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
