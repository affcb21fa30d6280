// Package systemd holds the tests of the systemd unit: systemd-analyze
// verify and security on it, and the exporter run under what this machine
// can reproduce of its restrictions without systemd as PID 1 (see
// ../README.md, "systemd", for what is and is not reproduced).
package systemd

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

const (
	unitFile = "kevent_exporter.service"
	dropIn   = "kevent_exporter.service.d/net-admin.conf"
	// auditDropIn gives CAP_AUDIT_READ, for the audit source.
	auditDropIn = "kevent_exporter.service.d/audit-read.conf"
	envFile     = "kevent_exporter.default"
)

var exporterBinary string

func TestMain(m *testing.M) {
	if spec := os.Getenv(sandboxEnv); spec != "" {
		sandboxMain(spec)
	}
	if marker := os.Getenv(probeEnv); marker != "" {
		os.Exit(probe(marker))
	}
	e2e.TestMain(m, "../..", &exporterBinary)
}

// unit is the [Service] section of a unit and its drop-ins: each key's
// assignments in order, an empty one resetting the list as systemd does
// for the list settings used here.
type unit map[string][]string

func loadUnit(t *testing.T, files ...string) unit {
	t.Helper()
	u := unit{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		section := ""
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "["):
				section = line
			case section == "[Service]":
				k, v, ok := strings.Cut(line, "=")
				if !ok {
					t.Fatalf("%s: %q", f, line)
				}
				if v == "" {
					u[k] = nil
				} else {
					u[k] = append(u[k], strings.Fields(v)...)
				}
			}
		}
		fh.Close()
	}
	return u
}

func (u unit) value(k string) string { return strings.Join(u[k], " ") }

// TestUnitSettings: the unit confines the exporter as deploy/README.md
// says.
func TestUnitSettings(t *testing.T) {
	u := loadUnit(t, unitFile)
	for k, want := range map[string]string{
		"DynamicUser":             "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"RestrictAddressFamilies": "AF_NETLINK AF_UNIX AF_INET AF_INET6",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"EnvironmentFile":         "-/etc/default/kevent_exporter",
		"ExecStart":               "/usr/local/bin/kevent_exporter $KEVENT_EXPORTER_OPTS",
	} {
		if got := u.value(k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	for _, k := range []string{"PrivateNetwork", "ProcSubset", "PrivateUsers", "User"} {
		if _, ok := u[k]; ok {
			t.Errorf("%s= is set: %s", k, u.value(k))
		}
	}
	d := loadUnit(t, unitFile, dropIn)
	if d.value("CapabilityBoundingSet") != "CAP_NET_ADMIN" || d.value("AmbientCapabilities") != "CAP_NET_ADMIN" {
		t.Errorf("with %s: CapabilityBoundingSet=%s AmbientCapabilities=%s, want CAP_NET_ADMIN alone",
			dropIn, d.value("CapabilityBoundingSet"), d.value("AmbientCapabilities"))
	}
	for _, c := range []struct {
		files []string
		want  string
	}{
		{[]string{unitFile, auditDropIn}, "CAP_AUDIT_READ"},
		// systemd ORs the drop-ins' capabilities.
		{[]string{unitFile, dropIn, auditDropIn}, "CAP_NET_ADMIN CAP_AUDIT_READ"},
	} {
		d := loadUnit(t, c.files...)
		if d.value("CapabilityBoundingSet") != c.want || d.value("AmbientCapabilities") != c.want {
			t.Errorf("with %v: CapabilityBoundingSet=%s AmbientCapabilities=%s, want %s",
				c.files[1:], d.value("CapabilityBoundingSet"), d.value("AmbientCapabilities"), c.want)
		}
	}
}

// TestSystemdAnalyzeAuditRead runs systemd-analyze verify on the unit with
// both drop-ins: the audit one is as valid as the other.
func TestSystemdAnalyzeAuditRead(t *testing.T) {
	dir := unitDir(t, true)
	b, err := os.ReadFile(auditDropIn)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, auditDropIn), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := systemdAnalyze(t, dir, "verify"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify with %s and %s: %v\n%s", dropIn, auditDropIn, err, out)
	}
	out, err := systemdAnalyze(t, dir, "security", "--offline=true", "--no-pager")
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: no exposure level in\n%s", out)
	}
	if level, _ := strconv.ParseFloat(m[1], 64); level > 4.0 {
		t.Errorf("exposure %.1f with both drop-ins, want at most 4.0\n%s", level, out)
	}
}

// unitDir copies the unit (and the drop-in, if asked) into a directory,
// its ExecStart pointing at the exporter the test built: systemd-analyze
// checks that the command exists.
func unitDir(t *testing.T, withDropIn bool) string {
	if withDropIn {
		return unitDirWith(t, dropIn)
	}
	return unitDirWith(t)
}

// unitDirWith is unitDir with the drop-ins dropIns.
func unitDirWith(t *testing.T, dropIns ...string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "ExecStart=/usr/local/bin/kevent_exporter ", "ExecStart="+exporterBinary+" ", 1))
	if err := os.WriteFile(filepath.Join(dir, unitFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range dropIns {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(d)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dropMonitorDropIn grants the drop monitor source's capabilities.
const dropMonitorDropIn = "kevent_exporter.service.d/drop-monitor.conf"

// TestDropMonitorDropIn: the drop monitor's drop-in grants CAP_NET_ADMIN
// and CAP_SYS_ADMIN alone, as ambient capabilities of the dynamic user,
// and systemd-analyze verify has nothing to say about it.
func TestDropMonitorDropIn(t *testing.T) {
	d := loadUnit(t, unitFile, dropMonitorDropIn)
	const want = "CAP_NET_ADMIN CAP_SYS_ADMIN"
	if d.value("CapabilityBoundingSet") != want || d.value("AmbientCapabilities") != want || d.value("DynamicUser") != "yes" {
		t.Errorf("with %s: CapabilityBoundingSet=%s AmbientCapabilities=%s DynamicUser=%s, want %s alone for the dynamic user",
			dropMonitorDropIn, d.value("CapabilityBoundingSet"), d.value("AmbientCapabilities"), d.value("DynamicUser"), want)
	}
	out, err := systemdAnalyze(t, unitDirWith(t, dropMonitorDropIn), "verify")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify with %s: %v\n%s", dropMonitorDropIn, err, out)
	}
}

func systemdAnalyze(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not in PATH: install Debian's systemd package (deploy/check.sh does)")
	}
	cmd := exec.Command(bin, append(args, filepath.Join(dir, unitFile))...)
	// The directory is the unit search path, so that the drop-in is read.
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":", "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSystemdAnalyze runs systemd-analyze verify on the unit alone and
// with the drop-in (any warning fails: verify exits 0 on unknown keys),
// and systemd-analyze security --offline, whose exposure must stay low.
func TestSystemdAnalyze(t *testing.T) {
	for _, withDropIn := range []bool{false, true} {
		dir := unitDir(t, withDropIn)
		out, err := systemdAnalyze(t, dir, "verify")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify (drop-in %v): %v\n%s", withDropIn, err, out)
		}
		out, err = systemdAnalyze(t, dir, "security", "--offline=true", "--no-pager")
		if err != nil {
			t.Errorf("systemd-analyze security (drop-in %v): %v\n%s", withDropIn, err, out)
			continue
		}
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("systemd-analyze security: no exposure level in\n%s", out)
			continue
		}
		level, _ := strconv.ParseFloat(m[1], 64)
		netAdmin := strings.Contains(out, "✗ CapabilityBoundingSet=~CAP_NET_ADMIN")
		t.Logf("drop-in %v: exposure %.1f, CAP_NET_ADMIN %v", withDropIn, level, netAdmin)
		if level > 4.0 || netAdmin != withDropIn {
			t.Errorf("drop-in %v: exposure %.1f (want at most 4.0), CAP_NET_ADMIN %v\n%s", withDropIn, level, netAdmin, out)
		}
	}
}

// The exporter's configuration under the unit: the namespace's uevents,
// and a NETLINK_USERSOCK group, which current kernels let only
// CAP_NET_ADMIN join.
const restrictedConfig = `sources:
  - {name: uevent, protocol: kobject_uevent, groups: [1], decoder: uevent}
  - {name: usersock, protocol: usersock, groups: [5], decoder: raw}
`

// dynamicUID is a uid in systemd's DynamicUser= range that no user has.
func dynamicUID(t *testing.T) int {
	t.Helper()
	for uid := 61184; uid <= 65519; uid++ {
		if _, err := user.LookupId(strconv.Itoa(uid)); err != nil {
			if _, err := user.LookupGroupId(strconv.Itoa(uid)); err != nil {
				return uid
			}
		}
	}
	t.Fatal("no free uid in 61184-65519")
	return 0
}

// sandboxFor reproduces the unit's settings (and the drop-in's) in a
// sandbox that runs args.
func sandboxFor(t *testing.T, withDropIn bool, files map[string]string, args ...string) sandbox {
	t.Helper()
	files_ := []string{unitFile}
	if withDropIn {
		files_ = append(files_, dropIn)
	}
	u := loadUnit(t, files_...)
	s := sandbox{
		Files:               files,
		Exec:                args,
		NoNewPrivileges:     u.value("NoNewPrivileges") == "yes",
		ProtectSystemStrict: u.value("ProtectSystem") == "strict",
		ProtectHome:         u.value("ProtectHome") == "yes",
		PrivateTmp:          u.value("PrivateTmp") == "yes",
		PrivateDevices:      u.value("PrivateDevices") == "yes",
		Umask:               0o022,
	}
	if u.value("DynamicUser") != "yes" {
		t.Fatal("the unit has no DynamicUser=yes: reproduce its User= here")
	}
	s.UID = dynamicUID(t)
	s.GID = s.UID
	if m, err := strconv.ParseInt(u.value("UMask"), 8, 32); err == nil {
		s.Umask = int(m)
	}
	ambient := map[string]bool{}
	for _, c := range u["AmbientCapabilities"] {
		ambient[c] = true
	}
	for _, c := range u["CapabilityBoundingSet"] {
		if ambient[c] {
			s.Caps = append(s.Caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
		}
	}
	fams := map[string]int{"AF_NETLINK": unix.AF_NETLINK, "AF_UNIX": unix.AF_UNIX, "AF_INET": unix.AF_INET,
		"AF_INET6": unix.AF_INET6, "AF_PACKET": unix.AF_PACKET}
	for _, f := range u["RestrictAddressFamilies"] {
		n, ok := fams[f]
		if !ok {
			t.Fatalf("RestrictAddressFamilies: %s: add it to the test", f)
		}
		s.Families = append(s.Families, n)
	}
	return s
}

// restricted is an exporter running in a sandbox.
type restricted struct {
	URL    string
	Logs   *syncbuf.Buffer
	cmd    *exec.Cmd
	exited chan error
}

// tryScrape fetches and parses /metrics.
func (r *restricted) tryScrape() (map[string]*dto.MetricFamily, error) {
	c := http.Client{Timeout: e2e.Timeout}
	resp, err := c.Get(r.URL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// waitFor scrapes until the series has the value want.
func (r *restricted) waitFor(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	var v float64
	var ok bool
	var err error
	if !poll(func() bool {
		var mfs map[string]*dto.MetricFamily
		if mfs, err = r.tryScrape(); err == nil {
			v, ok = e2e.Value(mfs, name, labels...)
		}
		return ok && v == want
	}) {
		t.Fatalf("%s%v = %v (present %v, scrape error %v), want %v; log:\n%s", name, labels, v, ok, err, want, r.Logs)
	}
}

func (r *restricted) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := r.tryScrape()
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, r.Logs)
	}
	v, _ := e2e.Value(mfs, name, labels...)
	return v
}

// poll retries cond every 20 ms until it holds or e2e.Timeout passes.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(e2e.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// startRestricted runs the exporter as the unit would: its ExecStart with
// the flags of the environment file, as the unit's user, with the unit's
// restrictions. It listens on :9736 of the package's network namespace.
func startRestricted(t *testing.T, withDropIn bool) *restricted {
	t.Helper()
	testenv.RequireRoot(t, "the sandbox mounts, switches users and drops capabilities")
	opts := envOpts(t)
	// /etc/kevent_exporter does not exist on the host and /etc cannot be
	// covered: the configuration moves to /usr/local/etc (the flag is the
	// only difference).
	const config = "/usr/local/etc/kevent_exporter/config.yml"
	for i, o := range opts {
		opts[i] = strings.Replace(o, "/etc/kevent_exporter/config.yml", config, 1)
	}
	files := map[string]string{
		"/usr/local/bin/kevent_exporter": exporterBinary,
		config:                           e2e.WriteConfig(t, restrictedConfig),
	}
	s := sandboxFor(t, withDropIn, files, append([]string{"/usr/local/bin/kevent_exporter"}, opts...)...)
	cmd, err := s.command()
	if err != nil {
		t.Fatal(err)
	}
	r := &restricted{URL: "http://127.0.0.1:9736", Logs: &syncbuf.Buffer{}, cmd: cmd, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = r.Logs, r.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-r.exited:
			if err != nil {
				t.Errorf("restricted exporter exited with %v after SIGTERM; log:\n%s", err, r.Logs)
			}
		case <-time.After(e2e.Timeout):
			cmd.Process.Kill()
			t.Errorf("restricted exporter still running after SIGTERM; log:\n%s", r.Logs)
		}
	})
	e2e.Eventually(t, "the restricted exporter serves /-/healthy", func() bool {
		select {
		case err := <-r.exited:
			t.Fatalf("restricted exporter exited: %v; log:\n%s", err, r.Logs)
		default:
		}
		resp, err := http.Get(r.URL + "/-/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

// envOpts returns the flags the environment file gives the exporter.
func envOpts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "KEVENT_EXPORTER_OPTS="); ok {
			return strings.Fields(strings.Trim(v, `"`))
		}
	}
	t.Fatalf("%s: no KEVENT_EXPORTER_OPTS", envFile)
	return nil
}

// status returns fields of the process's /proc status.
func status(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}

// TestUnderUnitRestrictions runs the exporter under the unit's
// restrictions: it starts, counts a uevent of the namespace's lo, reloads
// on SIGHUP (ExecReload), and the usersock source, which needs
// CAP_NET_ADMIN, is down; with the drop-in it is up, the process holding
// CAP_NET_ADMIN and nothing else while not root.
func TestUnderUnitRestrictions(t *testing.T) {
	for _, withDropIn := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop-in %v", withDropIn), func(t *testing.T) {
			r := startRestricted(t, withDropIn)
			r.waitFor(t, 1, "kevent_source_up", "source", "uevent")
			pid := r.cmd.Process.Pid
			st := status(t, pid)
			uid := st["Uid"]
			caps := "0000000000000000"
			if withDropIn {
				caps = "0000000000001000" // CAP_NET_ADMIN
			}
			for k, want := range map[string]string{
				"CapEff": caps, "CapPrm": caps, "CapAmb": caps, "CapBnd": caps, "CapInh": caps,
				"NoNewPrivs": "1", "Seccomp": "2", "Groups": "",
			} {
				if st[k] != want {
					t.Errorf("%s: %q, want %q", k, st[k], want)
				}
			}
			if f := strings.Fields(uid); len(f) != 4 || f[0] == "0" || f[0] != f[1] || f[0] != f[2] || f[0] != f[3] || st["Gid"] != uid {
				t.Errorf("Uid %q Gid %q: want one unprivileged uid and gid", uid, st["Gid"])
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if !strings.HasPrefix(string(cmdline), "/usr/local/bin/kevent_exporter\x00") {
				t.Errorf("pid %d runs %q", pid, cmdline)
			}
			t.Logf("pid %d: Uid %s, CapEff %s, NoNewPrivs %s, Seccomp %s", pid, uid, st["CapEff"], st["NoNewPrivs"], st["Seccomp"])

			before := r.value(t, "kevent_events_total", "source", "uevent", "event", "net/change")
			if err := testenv.WriteUevent("lo", "change"); err != nil {
				t.Fatal(err)
			}
			r.waitFor(t, before+1, "kevent_events_total", "source", "uevent", "event", "net/change")

			if withDropIn {
				r.waitFor(t, 1, "kevent_source_up", "source", "usersock")
			} else {
				if !poll(func() bool { return strings.Contains(r.Logs.String(), "Not permitted to subscribe") }) {
					t.Errorf("no \"Not permitted to subscribe\" for the usersock source; log:\n%s", r.Logs)
				}
				r.waitFor(t, 0, "kevent_source_up", "source", "usersock")
			}

			// ExecReload: SIGHUP re-reads the (read-only) configuration.
			loaded := r.value(t, "kevent_config_last_reload_success_timestamp_seconds")
			if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			e2e.Eventually(t, "a SIGHUP reload succeeds", func() bool {
				mfs, err := r.tryScrape()
				if err != nil {
					return false
				}
				ok, _ := e2e.Value(mfs, "kevent_config_last_reload_successful")
				ts, _ := e2e.Value(mfs, "kevent_config_last_reload_success_timestamp_seconds")
				return ok == 1 && ts > loaded
			})
		})
	}
}

// TestSandboxRestricts shows that the sandbox reproduces what it claims,
// with a probe run in it as the exporter is: the test binary, as the
// unit's user, tries what the unit forbids.
func TestSandboxRestricts(t *testing.T) {
	testenv.RequireRoot(t, "the sandbox mounts, switches users and drops capabilities")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "host-tmp-file")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(marker), 0o755)
	s := sandboxFor(t, false, map[string]string{"/usr/local/bin/probe": self}, "/usr/local/bin/probe")
	cmd, err := s.command()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(cmd.Env, probeEnv+"="+marker)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	t.Logf("probe in the sandbox:\n%s", out)
}

const probeEnv = "KEVENT_SYSTEMD_PROBE"

// probe runs in TestSandboxRestricts' sandbox (the test binary with
// probeEnv set, instead of the tests) and tries what the unit forbids. It
// prints a line per check and returns the exit status.
func probe(marker string) int {
	failed := 0
	check := func(what string, err, want error) {
		if !errors.Is(err, want) && err != want {
			failed++
			fmt.Printf("FAIL: %s: %v, want %v\n", what, err, want)
		} else {
			fmt.Printf("ok: %s: %v\n", what, err)
		}
	}
	socket := func(family, typ, proto int) error {
		fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	// RestrictAddressFamilies=AF_NETLINK AF_UNIX AF_INET AF_INET6
	check("socket(AF_NETLINK)", socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_KOBJECT_UEVENT), nil)
	check("socket(AF_INET)", socket(unix.AF_INET, unix.SOCK_STREAM, 0), nil)
	check("socket(AF_INET6)", socket(unix.AF_INET6, unix.SOCK_STREAM, 0), nil)
	check("socket(AF_UNIX)", socket(unix.AF_UNIX, unix.SOCK_STREAM, 0), nil)
	check("socket(AF_PACKET)", socket(unix.AF_PACKET, unix.SOCK_DGRAM, 0), unix.EAFNOSUPPORT)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	check("socketpair(AF_UNIX)", err, nil)
	_, err = unix.Socketpair(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	check("socketpair(AF_PACKET)", err, unix.EAFNOSUPPORT)
	// ProtectSystem=strict
	for _, p := range []string{"/usr/local/bin/x", "/etc/kevent-probe", "/var/lib/kevent-probe"} {
		check("create "+p, os.WriteFile(p, nil, 0o644), unix.EROFS)
	}
	// PrivateTmp=yes: an empty, writable /tmp of its own.
	_, err = os.Stat(marker)
	check("the host's /tmp file "+marker, err, unix.ENOENT)
	check("write /tmp", os.WriteFile("/tmp/probe", nil, 0o600), nil)
	// ProtectHome=yes
	for _, d := range []string{"/root", "/home"} {
		_, err := os.ReadDir(d)
		check("list "+d, err, unix.EACCES)
	}
	// PrivateDevices=yes: pseudo-devices only.
	_, err = os.Stat("/dev/null")
	check("/dev/null", err, nil)
	_, err = os.Stat("/dev/kmsg")
	check("/dev/kmsg", err, unix.ENOENT)
	// No capabilities, no new privileges, not root.
	check("CAP_NET_ADMIN (SO_RCVBUFFORCE)", rcvbufForce(), unix.EPERM)
	nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if nnp != 1 || os.Geteuid() == 0 || os.Getegid() == 0 {
		failed++
		fmt.Printf("FAIL: no_new_privs %d, euid %d, egid %d\n", nnp, os.Geteuid(), os.Getegid())
	}
	// UMask=0077
	if old := unix.Umask(0o077); old != 0o077 {
		failed++
		fmt.Printf("FAIL: umask %#o, want 0077\n", old)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func rcvbufForce() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20)
}
