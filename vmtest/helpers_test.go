//go:build vmtest

package vmtest

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// Where run.sh puts things in the initramfs.
var (
	exporterBinary = flag.String("exporter", "/bin/kevent_exporter", "static kevent_exporter `binary`")
	moduleDir      = flag.String("moddir", "/lib/kevent", "`directory` of kevent.ko, seed.ko and (if the kernel has it as a module) dummy.ko")
	busybox        = flag.String("busybox", "/bin/busybox", "busybox `binary` (for ip)")
)

// nobody runs an exporter unprivileged.
var nobody = &testenv.Nobody

func TestMain(m *testing.M) {
	// The test binary re-executed as a helper process (see runHelper).
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelperMain(h))
	}
	flag.Parse()
	// The VM emulates its CPU (TCG, no KVM): waits get longer than on the
	// host.
	e2e.Timeout = time.Minute
	var u unix.Utsname
	_ = unix.Uname(&u)
	fmt.Printf("vmtest: kernel %s, %d cpu\n", unix.ByteSliceToString(u.Release[:]), runtime.NumCPU())
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "vmtest: the tests load kernel modules and must run as root (in the VM run.sh boots)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// startExporter runs the exporter on config as cred (nil: root) and waits
// until it serves. It is stopped at the end of the test.
func startExporter(t *testing.T, cred *syscall.Credential, config string) *e2e.Exporter {
	t.Helper()
	e := e2e.Start(t, e2e.Options{Binary: *exporterBinary, Config: config, Credential: cred})
	who := "root"
	if cred != nil {
		who = fmt.Sprintf("uid %d gid %d", cred.Uid, cred.Gid)
	}
	t.Logf("exporter pid %d running as %s serves %s", e.Cmd.Process.Pid, who, e.URL)
	return e
}

// startFamilyAsProbed runs an exporter on config as nobody, and checks
// that source, which joins the groups of a generic netlink family, is what
// the probe p of those groups found the kernel allows uid 65534: up if it
// may join all, else down with the reason logged (e2e.WantFamilyAsProbed).
// It returns an exporter whose source is up, for the rest of the test:
// that one, or where uid 65534 may not join every group, one run as root.
// A kernel without the family or its groups skips the rest of the test.
func startFamilyAsProbed(t *testing.T, source string, p e2e.FamilyProbe, config string) *e2e.Exporter {
	t.Helper()
	t.Logf("as uid 65534: %s", p)
	e := startExporter(t, nobody, config)
	e.WantFamilyAsProbed(t, source, p)
	present := 0 // the groups the family has
	for _, err := range p.Errs {
		if errors.Is(err, unix.ENOENT) {
			t.Skipf("this kernel has no %s family: the source is down, saying so, and there is nothing more to test", p.Family)
		}
		if !errors.Is(err, testenv.ErrNoGroup) {
			present++
		}
	}
	switch {
	case present == 0:
		t.Skipf("this kernel's %s family has none of the groups: the source is down, saying so, and there is nothing more to test", p.Family)
	case p.Joinable() == present:
		return e
	}
	t.Logf("uid 65534 may not join every group of %s: an exporter run as root counts the events", p.Family)
	r := startExporter(t, nil, config)
	r.WaitFor(t, 1, "kevent_source_up", "source", source)
	r.WaitFor(t, float64(present), "kevent_source_groups_joined", "source", source)
	return r
}

// module is a kernel module of -moddir.
type module struct {
	name, path string
}

// useModule returns module name (name.ko in -moddir), which must not be
// loaded yet, and removes it at the end of the test if it is loaded then.
// Call it before starting an exporter that holds the module's protocol:
// cleanups run last-registered first, so the exporter stops before rmmod.
func useModule(t *testing.T, name string) *module {
	t.Helper()
	m := &module{name: name, path: filepath.Join(*moduleDir, name+".ko")}
	if m.loaded() {
		t.Fatalf("module %s is loaded already (left behind by an earlier test?)", name)
	}
	t.Cleanup(func() {
		if !m.loaded() {
			return
		}
		if err := m.remove(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

// tryLoad is insmod: finit_module(2) of the module's file with params.
func (m *module) tryLoad(params string) error {
	f, err := os.Open(m.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), params, 0); err != nil {
		return fmt.Errorf("insmod %s %s: %w", m.path, params, err)
	}
	return nil
}

// load is tryLoad failing the test on error.
func (m *module) load(t *testing.T, params string) {
	t.Helper()
	if err := m.tryLoad(params); err != nil {
		t.Fatal(err)
	}
}

// remove is rmmod: delete_module(2), which fails with EAGAIN rather than
// wait while the module is in use.
func (m *module) remove() error {
	if err := unix.DeleteModule(m.name, unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("rmmod %s: %w", m.name, err)
	}
	return nil
}

// loaded reports whether the module is in /proc/modules.
func (m *module) loaded() bool { return procModules(m.name) != "" }

// procModules returns the module's line of /proc/modules, "" if absent.
func procModules(name string) string {
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

// kwrite writes line and a newline to a sysfs file in one write(2), as
// echo does.
func kwrite(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(line + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

const sysKevent = "/sys/kernel/kevent"

// emit sends one event through the kevent module.
func emit(t *testing.T, line string) {
	t.Helper()
	if err := kwrite(sysKevent+"/emit", line); err != nil {
		t.Fatalf("echo %q >%s/emit: %v", line, sysKevent, err)
	}
}

// keventStat returns a counter of /sys/kernel/kevent/stats.
func keventStat(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile(sysKevent + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("stats: %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in %s/stats:\n%s", name, sysKevent, b)
	return 0
}

// stats returns /sys/kernel/kevent/stats on one line.
func stats() string {
	b, _ := os.ReadFile(sysKevent + "/stats")
	return strings.Join(strings.Fields(string(b)), " ")
}

// dmesg returns the kernel log buffer.
func dmesg(t *testing.T) string {
	t.Helper()
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil {
		t.Fatalf("syslog(SIZE_BUFFER): %v", err)
	}
	buf := make([]byte, n)
	n, err = unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		t.Fatalf("syslog(READ_ALL): %v", err)
	}
	return string(buf[:n])
}

// dmesgLines returns the kernel log's lines that contain any of subs.
func dmesgLines(t *testing.T, subs ...string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(dmesg(t)))
	for sc.Scan() {
		for _, s := range subs {
			if strings.Contains(sc.Text(), s) {
				out = append(out, sc.Text())
				break
			}
		}
	}
	return out
}

// ip runs busybox ip with args.
func ip(args ...string) error {
	out, err := exec.Command(*busybox, append([]string{"ip"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// poll calls cond every interval until it holds or timeout passes, and
// reports whether it held. It is for the waits whose condition may stay
// false (a module that is still held, a message a full socket dropped);
// e2e.Eventually is for those that must come true.
func poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// series formats a series as in the exposition format, for messages.
func series(name string, labels ...string) string {
	var kv []string
	for i := 0; i+1 < len(labels); i += 2 {
		kv = append(kv, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// show returns a series' value for messages, "<absent>" if there is none.
func show(mfs map[string]*dto.MetricFamily, name string, labels ...string) string {
	v, ok := e2e.Value(mfs, name, labels...)
	if !ok {
		return "<absent>"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// check fails the test unless a series has the value want, and logs it.
func check(t *testing.T, mfs map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	if v, ok := e2e.Value(mfs, name, labels...); !ok || v != want {
		t.Errorf("%s = %s, want %v", series(name, labels...), show(mfs, name, labels...), want)
		return
	}
	t.Logf("  %s = %v", series(name, labels...), want)
}

// procStatus returns the fields of /proc/PID/status by name.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}
