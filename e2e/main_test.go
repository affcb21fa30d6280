package e2e_test

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

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// These tests run the exporter binary against the kernel's netlink and read
// its /metrics over HTTP, in a network namespace of the package's own
// (testenv.Main). The tests of the package run in parallel and share it: a
// test that sends on NETLINK_USERSOCK does so on a group of its own
// (testenv.UsersockGroup); sources that only bind use
// testenv.IdleUsersockGroup, on which nothing is sent.

var exporterBinary string

func TestMain(m *testing.M) {
	e2e.TestMain(m, "..", &exporterBinary)
}

// startExporter runs the exporter on config (the embedded default if
// empty) and waits until it serves.
func startExporter(t *testing.T, config string, args ...string) *e2e.Exporter {
	t.Helper()
	testenv.RequireRoot(t, "the exporter's sources are counted in a private network namespace")
	return e2e.Start(t, e2e.Options{Binary: exporterBinary, Config: config, Args: args})
}

// startExporterAs is startExporter with the process's credentials.
func startExporterAs(t *testing.T, config string, cred *syscall.Credential) *e2e.Exporter {
	t.Helper()
	testenv.RequireRoot(t, "switching to an unprivileged user")
	return e2e.Start(t, e2e.Options{Binary: exporterBinary, Config: config, Credential: cred})
}

var value = e2e.Value

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
	g := testenv.UsersockGroup(t)
	e := startExporter(t, fmt.Sprintf(`
sources:
  - name: users
    protocol: usersock
    groups: [%d]
    decoder: raw
    event_names: {16: tick}
`, g))
	e.WaitFor(t, 1, "kevent_source_up", "source", "users")
	snd := sender(t, g)
	const n = 5000
	for i := 1; i <= n; i++ {
		if err := snd.Send(nlsend.AppendMessage(nil, 16, uint32(i), []byte(fmt.Sprintf("%d\x00", i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := snd.Send(nlsend.AppendMessage(nil, unix.NLMSG_DONE, 0, []byte("Hello from kernel"))); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "users", "event", "done")
	mfs := e.Scrape(t)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"kevent_events_total", []string{"source", "users", "event", "tick"}, n},
		{"kevent_event_last_value", []string{"source", "users", "event", "tick"}, n},
		{"kevent_event_last_payload_info", []string{"source", "users", "event", "tick", "payload", fmt.Sprint(n)}, 1},
		{"kevent_event_last_payload_info", []string{"source", "users", "event", "done", "payload", "Hello from kernel"}, 1},
		{"kevent_datagrams_lost_total", []string{"source", "users"}, 0},
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
// source counts real uevents, the link source is up, and the sources whose
// protocol or family nothing registered in this namespace are down with a
// clear log line each.
func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 29); err == nil {
		unix.Close(fd)
		t.Fatal("netlink protocol 29 is registered on this host; this test needs it unregistered")
	}
	e := startExporter(t, "")
	e.WaitFor(t, 1, "kevent_source_up", "source", "uevent")

	// The test owns its network namespace: lo's uevents are its own, so
	// the count is exact. An "online" uevent written last marks the end:
	// uevents arrive in order, so once it is counted every "change" is.
	const k = 7
	for i := 0; i < k; i++ {
		if err := testenv.WriteUevent("lo", "change"); err != nil {
			t.Fatal(err)
		}
	}
	if err := testenv.WriteUevent("lo", "online"); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "uevent", "event", "net/online")
	mfs := e.Scrape(t)
	if v, ok := value(mfs, "kevent_events_total", "source", "uevent", "event", "net/change"); v != k {
		t.Errorf("kevent_events_total{event=net/change} = %v (present %v), want %d", v, ok, k)
	}
	if v, ok := value(mfs, "kevent_event_last_payload_info", "source", "uevent", "event", "net/change", "payload", "/devices/virtual/net/lo"); !ok || v != 1 {
		t.Errorf("no payload info for lo's devpath")
	}

	// The rtnetlink source works in any network namespace.
	e.WaitFor(t, 1, "kevent_source_up", "source", "link")
	// thermal, acpi_event and VFS_DQUOT exist in the initial network
	// namespace only: here they are absent, like the module's family.
	const awaited = `msg="Generic netlink family not registered: the kernel module that provides it is not loaded; waiting for it"`
	for src, want := range map[string]string{
		"seed":    `source=seed protocol=29 groups=[2] msg="Netlink protocol not registered: the kernel module that provides it is not loaded; waiting for it"`,
		"kevent":  `source=kevent family=kevent groups=events ` + awaited,
		"thermal": `source=thermal family=thermal groups=event ` + awaited,
		"acpi":    `source=acpi family=acpi_event groups=acpi_mc_group ` + awaited,
		"quota":   `source=quota family=VFS_DQUOT groups=events ` + awaited,
	} {
		if v, ok := value(mfs, "kevent_source_up", "source", src); !ok || v != 0 {
			t.Errorf("kevent_source_up{source=%s} = %v (present %v), want 0", src, v, ok)
		}
		// Waiting for a module is normal: no state the alerts fire on.
		if v, ok := value(mfs, "kevent_source_state", "source", src, "state", "waiting"); !ok || v != 1 {
			t.Errorf("kevent_source_state{source=%s,state=waiting} = %v (present %v), want 1", src, v, ok)
		}
		e.WaitLog(t, want)
		if n := strings.Count(e.Logs.String(), want); n != 1 {
			t.Errorf("%d lines %s, want 1", n, want)
		}
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	ga, gb := testenv.UsersockGroup(t), testenv.UsersockGroup(t)
	first := fmt.Sprintf(`
sources:
  - name: a
    protocol: usersock
    groups: [%d]
    decoder: raw
`, ga)
	e := startExporter(t, first)
	e.WaitFor(t, 1, "kevent_source_up", "source", "a")
	snd := sender(t, ga)
	send := func() {
		if err := snd.Send(nlsend.AppendMessage(nil, 17, 0, []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	send()
	e.WaitFor(t, 1, "kevent_events_total", "source", "a", "event", "17")

	// A bad file is rejected; the old configuration keeps running.
	if err := os.WriteFile(e.ConfigFile, []byte(first+"    bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := e2e.Post(t, e.URL+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, `unknown key "bogus" in source`) {
		t.Fatalf("POST /-/reload with a bad file: %d %q, want 500 naming the key", code, body)
	}
	e.WaitFor(t, 0, "kevent_config_last_reload_successful")
	send()
	e.WaitFor(t, 2, "kevent_events_total", "source", "a", "event", "17")

	// SIGHUP with a good file adds a source and keeps the unchanged one,
	// with its counts.
	second := first + fmt.Sprintf(`
  - name: b
    protocol: usersock
    groups: [%d]
    decoder: raw
`, gb)
	if err := os.WriteFile(e.ConfigFile, []byte(second), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_config_last_reload_successful")
	e.WaitFor(t, 1, "kevent_source_up", "source", "b")
	send()
	e.WaitFor(t, 3, "kevent_events_total", "source", "a", "event", "17")

	// POST /-/reload with a file that drops source a.
	if err := os.WriteFile(e.ConfigFile, []byte(strings.Replace(second, "name: a", "name: c", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := e2e.Post(t, e.URL+"/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload: %d %q", code, body)
	}
	// The reload has replaced the sources when it answers; the new one
	// opens its socket in the background.
	if _, ok := value(e.Scrape(t), "kevent_source_up", "source", "a"); ok {
		t.Error("removed source a still reported")
	}
	e.WaitFor(t, 1, "kevent_source_up", "source", "c")
}

func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	e := startExporter(t, fmt.Sprintf("sources:\n  - {name: h, protocol: usersock, groups: [%d], decoder: raw}\n", testenv.IdleUsersockGroup))
	const openMetrics = "application/openmetrics-text;version=1.0.0"
	for _, c := range []struct {
		method, path, accept string
		code                 int
		contentType, body    string
	}{
		{"GET", "/", "", 200, "text/html", `href="/metrics"`},
		{"GET", "/-/healthy", "", 200, "text/plain", "Healthy"},
		{"GET", "/-/ready", "", 200, "text/plain", "Ready"},
		{"GET", "/-/reload", "", 405, "text/plain", "requires a POST"},
		{"GET", "/metrics", "", 200, "text/plain; version=0.0.4", "kevent_exporter_build_info"},
		// OpenMetrics, as node_exporter offers it.
		{"GET", "/metrics", openMetrics, 200, "application/openmetrics-text; version=1.0.0", "# EOF\n"},
	} {
		req, _ := http.NewRequest(c.method, e.URL+c.path, nil)
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.contentType) || !strings.Contains(string(b), c.body) {
			t.Errorf("%s %s (Accept %q): %d %q, want %d %q with %q; body:\n%.300s", c.method, c.path, c.accept,
				resp.StatusCode, resp.Header.Get("Content-Type"), c.code, c.contentType, c.body, b)
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
	e := startExporter(t, fmt.Sprintf("sources:\n  - {name: s, protocol: usersock, groups: [%d], decoder: raw}\n", testenv.IdleUsersockGroup))
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
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

// TestNotPermitted runs the exporter unprivileged on protocols whose kernel
// sockets do not let unprivileged sockets join their groups: usersock's
// never does, xfrm's does not where the kernel has it. The bind fails with
// EPERM, the source is down, the log says what to grant, and the uevent
// source, whose kernel socket allows unprivileged listeners, works. A probe
// says what the kernel allows uid 65534: the exporter must match it.
func TestNotPermitted(t *testing.T) {
	t.Parallel()
	e := startExporterAs(t, fmt.Sprintf(`
sources:
  - {name: usersock, protocol: usersock, groups: [%d], decoder: raw}
  - {name: xfrm, protocol: xfrm, groups: [1], decoder: raw}
  - {name: uevent, protocol: kobject_uevent, groups: [1], decoder: uevent}
`, testenv.IdleUsersockGroup), &testenv.Nobody)
	for _, s := range []struct {
		name     string
		protocol int
		group    uint32
	}{
		{"usersock", unix.NETLINK_USERSOCK, testenv.IdleUsersockGroup},
		{"xfrm", unix.NETLINK_XFRM, 1},
		{"uevent", unix.NETLINK_KOBJECT_UEVENT, 1},
	} {
		probed := testenv.JoinAsNobody(t, "", s.protocol, s.group)
		t.Logf("%s group %d as uid 65534: %v", s.name, s.group, probed)
		e.WantAsProbed(t, s.name, s.group, probed)
	}
}

// TestConfigFileRefused: a FIFO, a device or an oversized file is refused
// at once, by --config.check and by a reload, instead of blocking or
// growing without bound.
func TestConfigFileRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yml")
	if err := os.WriteFile(big, append([]byte("sources: []\n#"), make([]byte, 4<<20)...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{fifo, `config file \"` + fifo + `\" is not a regular file`},
		{"/dev/zero", `config file \"/dev/zero\" is not a regular file`},
		{big, `config file \"` + big + `\" is larger than 4194304 bytes`},
	} {
		cmd := exec.Command(exporterBinary, "--config.check", "--config.file="+c.file)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() {
			out, err = cmd.CombinedOutput()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(e2e.Timeout):
			cmd.Process.Kill()
			t.Fatalf("--config.check --config.file=%s still running after %v", c.file, e2e.Timeout)
		}
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("--config.check --config.file=%s: %v, want failure with %s\n%s", c.file, err, c.want, out)
		}
	}

	// A reload from a file that became a FIFO fails at once too.
	e := startExporter(t, fmt.Sprintf("sources:\n  - {name: f, protocol: usersock, groups: [%d], decoder: raw}\n", testenv.IdleUsersockGroup))
	if err := os.Remove(e.ConfigFile); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(e.ConfigFile, 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := e2e.Post(t, e.URL+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, "is not a regular file") {
		t.Fatalf("POST /-/reload with a FIFO config: %d %q", code, body)
	}
}
