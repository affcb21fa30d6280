// Package e2e runs the kevent_exporter binary as a user would and reads
// what it serves over HTTP. The host's end-to-end tests (e2e/) and the tests
// that run inside the qemu VM (vmtest/) share it.
package e2e

import (
	"context"
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

	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// Timeout bounds every wait of this package: a condition that does not
// come true within it fails the test rather than hanging it.
var Timeout = 20 * time.Second

// Build compiles the exporter in module directory dir into a new temporary
// directory that an unprivileged exporter can read, and returns the
// binary's path and a function that removes it.
func Build(dir string) (string, func(), error) {
	tmp, err := os.MkdirTemp("", "kevent_exporter_test")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	if err := os.Chmod(tmp, 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	bin := filepath.Join(tmp, "kevent_exporter")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building the exporter: %v\n%s", err, out)
	}
	return bin, cleanup, nil
}

// Options say how to run an exporter.
type Options struct {
	// Binary is the exporter's path.
	Binary string
	// Config is the YAML configuration; empty runs the embedded default.
	Config string
	// Args are more command-line flags.
	Args []string
	// Credential runs the exporter as another user.
	Credential *syscall.Credential
	// Wrapper is a command that runs the exporter, which it names last
	// with its arguments and must exec in place (e.g. nsenter).
	Wrapper []string
	// Netns is the network namespace (a path such as /proc/PID/ns/net)
	// the exporter listens in, when the Wrapper puts it in another than
	// the test's: HTTP requests are made from there.
	Netns string
	// SkipStopCheck leaves the exit status after SIGTERM unchecked (for
	// tests that stop the exporter themselves).
	SkipStopCheck bool
}

// Exporter is a running exporter process.
type Exporter struct {
	Cmd *exec.Cmd
	// URL is the exporter's base URL, e.g. http://127.0.0.1:1234.
	URL string
	// ConfigFile is the configuration file's path, if Options.Config was set.
	ConfigFile string
	// Logs collects the exporter's standard error.
	Logs *syncbuf.Buffer

	client  *http.Client
	exited  chan struct{}
	exitErr error
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WriteConfig writes config into a new file that an unprivileged exporter
// can read and returns its path.
func WriteConfig(t testing.TB, config string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Start runs an exporter and waits until it serves /-/healthy. At the end
// of the test it is stopped with SIGTERM and, unless SkipStopCheck, must
// exit with status 0 within Timeout.
func Start(t testing.TB, opts Options) *Exporter {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	e := &Exporter{URL: "http://" + addr, Logs: &syncbuf.Buffer{}, exited: make(chan struct{}), client: &http.Client{Timeout: Timeout}}
	if opts.Netns != "" {
		e.client.Transport = &http.Transport{DialContext: dialIn(opts.Netns)}
	}
	args := append([]string{"--web.listen-address=" + addr}, opts.Args...)
	if opts.Config != "" {
		e.ConfigFile = WriteConfig(t, opts.Config)
		args = append(args, "--config.file="+e.ConfigFile)
	}
	argv := append(append(opts.Wrapper[:len(opts.Wrapper):len(opts.Wrapper)], opts.Binary), args...)
	e.Cmd = exec.Command(argv[0], argv[1:]...)
	e.Cmd.Stderr = e.Logs
	e.Cmd.SysProcAttr = &syscall.SysProcAttr{Credential: opts.Credential}
	if err := e.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.exitErr = e.Cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		err, ok := e.Stop()
		switch {
		case !ok:
			t.Errorf("exporter still running %v after SIGTERM; log:\n%s", Timeout, e.Logs)
		case err != nil && !opts.SkipStopCheck:
			t.Errorf("exporter exited with %v after SIGTERM; log:\n%s", err, e.Logs)
		}
	})
	Eventually(t, "the exporter serves /-/healthy", func() bool {
		select {
		case <-e.exited:
			t.Fatalf("exporter exited: %v; log:\n%s", e.exitErr, e.Logs)
		default:
		}
		resp, err := e.client.Get(e.URL + "/-/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return e
}

// Signal sends sig to the exporter.
func (e *Exporter) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := e.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Stop sends SIGTERM unless the exporter has exited, and waits up to
// Timeout for it to exit. ok is false if it did not (it is then killed);
// err is its exit error.
func (e *Exporter) Stop() (err error, ok bool) {
	select {
	case <-e.exited:
		return e.exitErr, true
	default:
	}
	_ = e.Cmd.Process.Signal(syscall.SIGTERM)
	return e.Wait()
}

// Wait waits up to Timeout for the exporter to exit, killing it after.
func (e *Exporter) Wait() (err error, ok bool) {
	select {
	case <-e.exited:
		return e.exitErr, true
	case <-time.After(Timeout):
		_ = e.Cmd.Process.Kill()
		<-e.exited
		return e.exitErr, false
	}
}

// Scrape fetches and parses /metrics.
func (e *Exporter) Scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := e.TryScrape()
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, e.Logs)
	}
	return mfs
}

// TryScrape fetches and parses /metrics, returning an error where Scrape
// fails the test.
func (e *Exporter) TryScrape() (map[string]*dto.MetricFamily, error) {
	resp, err := e.client.Get(e.URL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /metrics: %s\n%s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Value returns the value of the series of name with labels, given as
// name, value pairs, and whether it exists. Labels not given may have any
// value; the first matching series counts.
func Value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	for _, m := range mfs[name].GetMetric() {
		if !hasLabels(m, labels) {
			continue
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

// hasLabels says whether m has labels, name and value pairs.
func hasLabels(m *dto.Metric, labels []string) bool {
	have := make(map[string]string)
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for i := 0; i+1 < len(labels); i += 2 {
		if have[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}

// Sum adds the values of all series of name that have labels.
func Sum(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
	for _, m := range mfs[name].GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return sum
}

// WaitFor scrapes until the series has the value want, failing the test
// after Timeout.
func (e *Exporter) WaitFor(t testing.TB, want float64, name string, labels ...string) {
	t.Helper()
	var v float64
	var ok bool
	var err error
	Eventually(t, fmt.Sprintf("%s%v = %v", name, labels, want), func() bool {
		var mfs map[string]*dto.MetricFamily
		v, ok = 0, false
		if mfs, err = e.TryScrape(); err == nil {
			v, ok = Value(mfs, name, labels...)
		}
		return ok && v == want
	}, Lazy(func() string { return fmt.Sprintf("last: %v (present %v, scrape error %v)", v, ok, err) }), e.Log())
}

// WaitLog waits until the exporter's log contains s.
func (e *Exporter) WaitLog(t testing.TB, s string) {
	t.Helper()
	Eventually(t, "the exporter logs "+s, func() bool { return strings.Contains(e.Logs.String(), s) }, e.Log())
}

// Log is the exporter's log as a detail of Eventually's failure message.
func (e *Exporter) Log() fmt.Stringer {
	return Lazy(func() string { return "log:\n" + e.Logs.String() })
}

// Eventually polls cond every 20 ms until it holds, failing the test with
// what after Timeout. The failure shows details as they are then: the
// exporter's log (Exporter.Log), the last value seen (a Lazy). It is the one
// wait of the tests: a condition polled with a deadline, never a fixed
// sleep.
func Eventually(t testing.TB, what string, cond func() bool, details ...fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			fmt.Fprintf(&b, "timed out after %v waiting until %s", Timeout, what)
			for _, d := range details {
				fmt.Fprintf(&b, "\n%s", d)
			}
			t.Fatal(b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Lazy is a detail of Eventually's failure message, made when it fails.
type Lazy func() string

// String makes the detail.
func (f Lazy) String() string { return f() }

// Post sends an empty POST request and returns the status and body.
func Post(t testing.TB, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: Timeout}
	resp, err := c.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dialIn returns a dial function that makes its sockets in the network
// namespace at path: a socket stays in the namespace it was made in.
func dialIn(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := testenv.InNetns(path, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// TestMain runs a package's tests that start the exporter built from the
// module in dir, setting *binary to it: in a network namespace of their
// own as root (internal/testenv), after fetching the exporter's modules
// while the module proxy is still reachable.
func TestMain(m *testing.M, dir string, binary *string) {
	if os.Geteuid() == 0 && !testenv.Isolated() {
		// The tests run in a new network namespace, with no route to the
		// module proxy: fetch what building the exporter needs first.
		cmd := exec.Command("go", "mod", "download")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go mod download in the exporter's module: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	testenv.Main(m, func() (func(), error) {
		bin, cleanup, err := Build(dir)
		*binary = bin
		return cleanup, err
	})
}
