package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// runExporter runs the exporter with args to its end, which must come
// within e2e.Timeout, and returns its exit status, its output and how
// long it took.
func runExporter(t *testing.T, args ...string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, exporterBinary, args...).CombinedOutput()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%v still running after %v; output:\n%s", args, e2e.Timeout, out)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, string(out), took
}

// TestTelemetryPathRefused: a metrics path that http.ServeMux refuses or
// that another endpoint has is a flag error, as a bad --log.level is,
// where the exporter used to panic at startup.
func TestTelemetryPathRefused(t *testing.T) {
	t.Parallel()
	const own = " is the path of one of the exporter's own endpoints (/-/healthy, /-/ready, /-/reload)"
	const chars = " may have only letters, digits and the characters /-._~!$&'()*+,;=:@"
	for _, c := range []struct{ path, want string }{
		{"/-/healthy", `"/-/healthy"` + own},
		{"/-/ready", `"/-/ready"` + own},
		{"/-/reload", `"/-/reload"` + own},
		{"", `"" must be an absolute path, such as /metrics`},
		{"metrics", `"metrics" must be an absolute path, such as /metrics`},
		{"/a b", `"/a b"` + chars},
		{"/{name}", `"/{name}"` + chars},
		{"/m%20", `"/m%20"` + chars},
		{"/./metrics", `"/./metrics" is not a clean path (/metrics)`},
		{"//", `"//" is not a clean path (/)`},
	} {
		code, out, _ := runExporter(t, "--web.listen-address=127.0.0.1:0", "--web.telemetry-path="+c.path)
		if want := "--web.telemetry-path " + c.want + "\n"; code != 2 || out != want {
			t.Errorf("--web.telemetry-path=%q: exit status %d, output:\n%s\nwant 2 and %s", c.path, code, out, want)
		}
	}
	// The flag's other errors, for comparison.
	if code, out, _ := runExporter(t, "--log.level=loud"); code != 2 || strings.Count(out, "\n") != 1 {
		t.Errorf("--log.level=loud: exit status %d, output:\n%s\nwant 2 and one line", code, out)
	}
}

// TestTelemetryPathSubtree: a path with a trailing slash, which the check
// lets through, serves metrics under it.
func TestTelemetryPathSubtree(t *testing.T) {
	t.Parallel()
	e := startExporter(t, fmt.Sprintf("sources:\n  - {name: s, protocol: usersock, groups: [%d], decoder: raw}\n", testenv.IdleUsersockGroup), "--web.telemetry-path=/stats/")
	resp, err := http.Get(e.URL + "/stats/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /stats/: %s", resp.Status)
	}
}

// TestConfigThatCannotRunRefused: a configuration that passed
// --config.check although the exporter and the monitor crashed on it (an
// empty family made a source with no groups) is refused by the check, by a
// reload, which keeps the running configuration, and by the monitor.
func TestConfigThatCannotRunRefused(t *testing.T) {
	t.Parallel()
	bad := "../config/testdata/invalid-family-empty.yml"
	const want = `line 5: family: \"\" is not 1-15 printable ASCII characters (GENL_NAMSIZ)`
	if code, out, _ := runExporter(t, "--config.check", "--config.file="+bad); code != 1 || !strings.Contains(out, want) {
		t.Errorf("--config.check: exit status %d, output:\n%s\nwant 1 and %s", code, out, want)
	}
	if code, out, _ := runExporter(t, "monitor", "--config.file="+bad, "--timeout=1s"); code == 0 || strings.Contains(out, "panic") || !strings.Contains(out, strings.ReplaceAll(want, `\"`, `"`)) {
		t.Errorf("monitor: exit status %d, output:\n%s\nwant a failure with %s", code, out, want)
	}

	e := startExporter(t, fmt.Sprintf("sources:\n  - {name: s, protocol: usersock, groups: [%d], decoder: raw}\n", testenv.IdleUsersockGroup))
	e.WaitFor(t, 1, "kevent_source_up", "source", "s")
	b, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.ConfigFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := e2e.Post(t, e.URL+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, strings.ReplaceAll(want, `\"`, `"`)) {
		t.Fatalf("POST /-/reload: %d %q, want 500 with %s", code, body, want)
	}
	e.WaitFor(t, 0, "kevent_config_last_reload_successful")
	e.WaitFor(t, 1, "kevent_source_up", "source", "s")
}

// blockingFile returns the path of a file that stat calls regular but whose
// reads wait for data that never comes: the trace_pipe of a tracing
// instance of the test's own, on a tracefs mounted in the tests' private
// mount namespace, so that reading it takes nothing from anyone. Where
// tracefs cannot be had it is /proc/kmsg, whose reads take kernel log lines
// from a syslog daemon that reads them there.
func blockingFile(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t, "mounting tracefs in the tests' mount namespace")
	dir := t.TempDir()
	if err := unix.Mount("nodev", dir, "tracefs", 0, ""); err != nil {
		t.Logf("cannot mount tracefs (%v): reading /proc/kmsg instead", err)
		return "/proc/kmsg"
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	// Instances are the kernel's, not the mount's: the name is this run's.
	inst := filepath.Join(dir, "instances", "kevent_test_"+strconv.Itoa(os.Getpid())+"_"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Mkdir(inst, 0o700); err != nil {
		t.Logf("cannot make a tracing instance (%v): reading /proc/kmsg instead", err)
		return "/proc/kmsg"
	}
	t.Cleanup(func() {
		if err := os.Remove(inst); err != nil {
			t.Errorf("removing the tracing instance: %v", err)
		}
	})
	return filepath.Join(inst, "trace_pipe")
}

// openCount returns how many of process pid's file descriptors are not
// sockets (HTTP connections come and go), and how many of them are path.
func openCount(t *testing.T, pid int, path string) (files, file int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		// A descriptor closed since ReadDir has no link.
		target, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil || strings.HasPrefix(target, "socket:") {
			continue
		}
		files++
		if target == path {
			file++
		}
	}
	return files, file
}

// TestConfigFileThatBlocks: a configuration file that stat calls regular
// but whose reads wait for data (as /proc/kmsg's do) is given up with an
// error within 10 s by --config.check and by a reload, and reloads from it,
// however many, leave no file descriptor or goroutine behind.
func TestConfigFileThatBlocks(t *testing.T) {
	t.Parallel()
	file := blockingFile(t)
	if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("%s: %v, mode %v: want a regular file", file, err, fi.Mode())
	}
	const gaveUp = "is not a regular file: reading it did not end within 5s"
	want := fmt.Sprintf("config file %q %s", file, gaveUp)

	code, out, took := runExporter(t, "--config.check", "--config.file="+file)
	if code != 1 || !strings.Contains(out, strconv.Quote(want)) || took > 10*time.Second {
		t.Errorf("--config.check: exit status %d after %v, output:\n%s\nwant 1 within 10 s, and %s", code, took, out, want)
	}

	e := startExporter(t, fmt.Sprintf("sources:\n  - {name: s, protocol: usersock, groups: [%d], decoder: raw}\n", testenv.IdleUsersockGroup))
	e.WaitFor(t, 1, "kevent_source_up", "source", "s")
	pid := e.Cmd.Process.Pid
	fds, _ := openCount(t, pid, file)
	// Counted over one new connection each time: each one the exporter
	// keeps open has a goroutine.
	goroutinesNow := func() float64 {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		n, ok := e2e.Value(e.Scrape(t), "go_goroutines")
		if !ok {
			t.Fatal("no go_goroutines")
		}
		return n
	}
	goroutines := goroutinesNow()
	if err := os.Remove(e.ConfigFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, e.ConfigFile); err != nil {
		t.Fatal(err)
	}

	want = fmt.Sprintf("config file %q %s", e.ConfigFile, gaveUp)
	start := time.Now()
	code, body := e2e.Post(t, e.URL+"/-/reload")
	if took := time.Since(start); code != http.StatusInternalServerError || !strings.Contains(body, want) || took > 10*time.Second {
		t.Fatalf("POST /-/reload: %d %q after %v, want 500 with %s within 10 s", code, body, took, want)
	}

	// Each SIGHUP starts a reload, which holds the file open until its
	// read gives up; signals sent at once would be merged, so each is
	// seen to have started a reload (its read in flight or its error
	// logged) before the next.
	const hups = 10
	// A reload ends failed, or superseded where a newer one ended first
	// (the reads give up at about the same time).
	ended := func() int {
		logs := e.Logs.String()
		return strings.Count(logs, `msg="Error reloading config, keeping the old one"`) +
			strings.Count(logs, `msg="Reload superseded by a newer one, not applied"`)
	}
	for i := 1; i <= hups; i++ {
		e.Signal(t, syscall.SIGHUP)
		e2e.Eventually(t, fmt.Sprintf("SIGHUP %d starts a reload", i), func() bool {
			_, reading := openCount(t, pid, file)
			// The POST's reload logged an error too.
			return reading+ended()-1 >= i
		})
	}
	e2e.Eventually(t, "every reload fails", func() bool { return ended() == 1+hups })
	if strings.Contains(e.Logs.String(), `msg="Reloaded config"`) {
		t.Error("a reload of the blocking file was applied")
	}
	e2e.Eventually(t, "the file descriptors are back to those before the reloads", func() bool {
		n, reading := openCount(t, pid, file)
		return n == fds && reading == 0
	})
	e2e.Eventually(t, "the goroutines are back to those before the reloads", func() bool {
		return goroutinesNow() <= goroutines
	})
	e.WaitFor(t, 1, "kevent_source_up", "source", "s")
}
