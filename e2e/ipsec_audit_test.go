package e2e_test

// Tests of the xfrm and audit decoders against the host kernel: xfrm in a
// network namespace of the test's own (IPsec state is per namespace), and
// audit in the initial network namespace, the only one the kernel
// multicasts audit records to.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

const xfrmConfig = `
sources:
  - name: ipsec
    protocol: xfrm
    groups: [expire, sa, policy]
    decoder: xfrm
`

// requireXfrm skips the test (failing it under KEVENT_TEST_STRICT=1) where
// the kernel has no NETLINK_XFRM or there is no ip command with xfrm.
func requireXfrm(t *testing.T, ns string) {
	t.Helper()
	err := testenv.InNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_XFRM)
		if err == nil {
			unix.Close(fd)
		}
		return err
	})
	if err == nil {
		_, err = exec.LookPath("ip")
	}
	if err != nil {
		if os.Getenv("KEVENT_TEST_STRICT") == "1" {
			t.Fatalf("this test needs NETLINK_XFRM and iproute2's ip: %v", err)
		}
		t.Skipf("this test needs NETLINK_XFRM and iproute2's ip: %v", err)
	}
}

// ipIn runs ip with args in the network namespace at ns.
func ipIn(t *testing.T, ns string, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + ns, "ip"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// xfrmMonitor is ip xfrm monitor, run beside the exporter as a reference:
// it counts the notifications it prints by their first word.
type xfrmMonitor struct {
	mu     sync.Mutex
	counts map[string]int
	text   bytes.Buffer
}

func startXfrmMonitor(t *testing.T, ns string) *xfrmMonitor {
	t.Helper()
	m := &xfrmMonitor{counts: make(map[string]int)}
	cmd := exec.Command("nsenter", "--net="+ns, "ip", "xfrm", "monitor")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := bufio.NewScanner(out)
		for s.Scan() {
			l := s.Text()
			m.mu.Lock()
			m.text.WriteString(l + "\n")
			// A notification starts with a line that is not indented:
			// "src ..." for a new policy, "Deleted src ...", "Expired
			// src ...".
			if l != "" && l[0] != '\t' && l[0] != ' ' {
				switch w, _, _ := strings.Cut(l, " "); w {
				case "src":
					m.counts["new"]++
				default:
					m.counts[strings.ToLower(w)]++
				}
			}
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
	})
	return m
}

func (m *xfrmMonitor) count(what string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[what]
}

func (m *xfrmMonitor) printed(s string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Contains(m.text.String(), s)
}

// TestXfrmPoliciesAndLarvalSAs: in a network namespace of the test's own,
// 10 policies added and deleted and 3 larval SAs (ip xfrm state allocspi)
// that expire after net.core.xfrm_acq_expires give the exporter exactly
// 10 policy/new and 10 policy/del, each about its policy's selector, and 3
// sa/hard_expire, each about its tunnel; ip xfrm monitor, run beside,
// prints as many.
func TestXfrmPoliciesAndLarvalSAs(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "making network namespaces")
	ns := newNetns(t)
	requireXfrm(t, ns)
	// Larval SAs live for xfrm_acq_expires seconds (30 by default).
	sysctlIn(t, ns, "net/core/xfrm_acq_expires", "1")
	e := startExporterIn(t, ns, xfrmConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "ipsec")

	// The monitor has joined its groups once it prints a policy added
	// after it started: sentinels until it does.
	mon := startXfrmMonitor(t, ns)
	want := make(map[string]float64)
	sentinels := 0
	e2e.Eventually(t, "ip xfrm monitor prints a sentinel policy", func() bool {
		if sentinels > 0 && mon.printed(fmt.Sprintf("src 10.9.0.%d/32 ", sentinels)) {
			return true
		}
		sentinels++
		ipIn(t, ns, "xfrm", "policy", "add", "src", fmt.Sprintf("10.9.0.%d/32", sentinels), "dst", fmt.Sprintf("10.9.1.%d/32", sentinels), "dir", "in")
		want[fmt.Sprintf("policy/new 10.9.0.%d/32->10.9.1.%d/32 in", sentinels, sentinels)] = 1
		return false
	})
	newBase := mon.count("new")

	const policies, larval = 10, 3
	for i := 1; i <= policies; i++ {
		src, dst := fmt.Sprintf("10.1.%d.0/24", i), fmt.Sprintf("10.2.%d.0/24", i)
		ipIn(t, ns, "xfrm", "policy", "add", "src", src, "dst", dst, "dir", "out",
			"tmpl", "src", "10.0.0.1", "dst", fmt.Sprintf("10.0.1.%d", i), "proto", "esp", "reqid", fmt.Sprint(i), "mode", "tunnel")
		want["policy/new "+src+"->"+dst+" out"] = 1
	}
	for i := 1; i <= policies; i++ {
		src, dst := fmt.Sprintf("10.1.%d.0/24", i), fmt.Sprintf("10.2.%d.0/24", i)
		ipIn(t, ns, "xfrm", "policy", "del", "src", src, "dst", dst, "dir", "out")
		want["policy/del "+src+"->"+dst+" out"] = 1
	}
	for j := 1; j <= larval; j++ {
		dst, reqid := fmt.Sprintf("10.0.2.%d", j), 100+j
		ipIn(t, ns, "xfrm", "state", "allocspi", "src", "10.0.0.1", "dst", dst, "proto", "esp", "reqid", fmt.Sprint(reqid), "mode", "tunnel")
		want[fmt.Sprintf("sa/hard_expire esp 10.0.0.1->%s reqid %d", dst, reqid)] = 1
	}

	e2e.Eventually(t, "ip xfrm monitor prints the larval SAs' expiries", func() bool { return mon.count("expired") >= larval })
	e2e.Eventually(t, "the exporter counts every expiry", func() bool {
		return e2e.Sum(e.Scrape(t), "kevent_events_total", "source", "ipsec", "event", "sa/hard_expire") >= larval
	})
	checkCounts(t, e, "ipsec", want)
	for what, n := range map[string]int{"new": policies, "deleted": policies, "expired": larval} {
		got := mon.count(what)
		if what == "new" {
			got -= newBase
		}
		if got != n {
			t.Errorf("ip xfrm monitor printed %d %s notifications after the sentinel, want %d", got, what, n)
		}
	}
	if t.Failed() {
		mon.mu.Lock()
		t.Logf("ip xfrm monitor:\n%s", mon.text.String())
		mon.mu.Unlock()
	}
}

const auditConfig = `
sources:
  - name: audit
    protocol: audit
    groups: [readlog]
    decoder: audit
`

const (
	auditUserAVC = 1107
	auditReadlog = 1
)

// auditListener is the test's own subscription to the audit records, in
// the initial network namespace: it counts the USER_AVC records whose
// target class is its class.
type auditListener struct {
	fd    int
	class string

	mu       sync.Mutex
	seen     int
	overflow bool
	done     chan struct{}
}

// listenAudit joins the audit readlog group, or skips the test (failing it
// under KEVENT_TEST_STRICT=1) where the kernel has no audit.
func listenAudit(t *testing.T, class string) *auditListener {
	t.Helper()
	l := &auditListener{class: class, done: make(chan struct{}), fd: -1}
	err := testenv.InNetns(testenv.HostNetns(), func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
		if err != nil {
			return err
		}
		l.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: auditReadlog}); err != nil {
			return fmt.Errorf("joining readlog: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	})
	if err != nil {
		if l.fd >= 0 {
			unix.Close(l.fd)
		}
		if errors.Is(err, unix.EPROTONOSUPPORT) && os.Getenv("KEVENT_TEST_STRICT") != "1" {
			t.Skipf("this kernel has no audit: %v", err)
		}
		t.Fatalf("listening to audit records: %v", err)
	}
	stop := make(chan struct{})
	go l.read(stop)
	t.Cleanup(func() {
		close(stop)
		<-l.done
		unix.Close(l.fd)
	})
	return l
}

func (l *auditListener) read(stop chan struct{}) {
	defer close(l.done)
	buf := make([]byte, 1<<16)
	mine := []byte(" tclass=" + l.class + " ")
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(l.fd, buf, 0)
		switch {
		case err == unix.ENOBUFS:
			l.mu.Lock()
			l.overflow = true
			l.mu.Unlock()
			continue
		case err != nil || n < 16:
			continue
		}
		if binary.NativeEndian.Uint16(buf[4:6]) == auditUserAVC && bytes.Contains(buf[16:n], mine) {
			l.mu.Lock()
			l.seen++
			l.mu.Unlock()
		}
	}
}

func (l *auditListener) count() (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen, l.overflow
}

// sendUserAVC sends n AUDIT_USER_AVC messages about class to the kernel,
// from the initial network namespace, each acknowledged.
func sendUserAVC(t *testing.T, class string, n int) {
	t.Helper()
	err := testenv.InNetns(testenv.HostNetns(), func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		buf := make([]byte, 4096)
		for i := range n {
			text := fmt.Sprintf("avc:  denied  { kevent_test } for  seq=%d tclass=%s permissive=0 \x00", i, class)
			m := make([]byte, 16, 16+len(text))
			binary.NativeEndian.PutUint32(m[0:4], uint32(16+len(text)))
			binary.NativeEndian.PutUint16(m[4:6], auditUserAVC)
			binary.NativeEndian.PutUint16(m[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
			binary.NativeEndian.PutUint32(m[8:12], uint32(i+1))
			if err := unix.Sendto(fd, append(m, text...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
				return err
			}
			r, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return err
			}
			if r < 20 || binary.NativeEndian.Uint16(buf[4:6]) != unix.NLMSG_ERROR {
				return fmt.Errorf("message %d: reply of %d bytes, type %d, want an acknowledgement", i, r, binary.NativeEndian.Uint16(buf[4:6]))
			}
			if errno := int32(binary.NativeEndian.Uint32(buf[16:20])); errno != 0 {
				return fmt.Errorf("message %d: %w", i, unix.Errno(-errno))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("sending AUDIT_USER_AVC: %v", err)
	}
}

// TestAuditUserAVC: AUDIT_USER_AVC messages that the test sends (root has
// CAP_AUDIT_WRITE, and the kernel logs this type even with auditing off)
// are counted exactly, as event USER_AVC about the test's own target
// class, against a listener of the test's own; other audit traffic on the
// machine has other objects.
func TestAuditUserAVC(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "entering the initial network namespace")
	class := fmt.Sprintf("kevent_test_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	l := listenAudit(t, class)
	e := startExporterIn(t, testenv.HostNetns(), auditConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "audit")

	const n = 50
	sendUserAVC(t, class, n)
	e2e.Eventually(t, "the test's listener sees its records", func() bool { c, _ := l.count(); return c >= n })
	e.WaitFor(t, n, "kevent_events_total", "source", "audit", "event", "USER_AVC", "object", class)
	if c, overflow := l.count(); c != n || overflow {
		t.Errorf("the test's listener saw %d records of class %s (overflow %v), want %d", c, class, overflow, n)
	}
	mfs := e.Scrape(t)
	if v, _ := e2e.Value(mfs, "kevent_events_total", "source", "audit", "event", "USER_AVC", "object", class); v != n {
		t.Errorf("kevent_events_total{event=USER_AVC,object=%s} = %v, want %d", class, v, n)
	}
	for _, name := range []string{"kevent_decode_errors_total", "kevent_datagrams_lost_total"} {
		if v, ok := e2e.Value(mfs, name, "source", "audit"); !ok || v != 0 {
			t.Errorf("%s{source=audit} = %v (present %v), want 0", name, v, ok)
		}
	}
}

// TestXfrmAuditDenied: an exporter without CAP_NET_ADMIN and
// CAP_AUDIT_READ has its xfrm and audit sources down as the kernel's
// answer to an unprivileged probe says: denied, the log saying what to
// grant, where the kernel refuses.
func TestXfrmAuditDenied(t *testing.T) {
	t.Parallel()
	e := startExporterAs(t, xfrmConfig+`
  - name: audit
    protocol: audit
    groups: [readlog]
    decoder: audit
`, &testenv.Nobody)
	for _, s := range []struct {
		name     string
		protocol int
		group    uint32
	}{
		{"ipsec", unix.NETLINK_XFRM, 2},
		{"audit", unix.NETLINK_AUDIT, auditReadlog},
	} {
		probed := testenv.JoinAsNobody(t, "", s.protocol, s.group)
		t.Logf("%s group %d as uid 65534: %v", s.name, s.group, probed)
		e.WantAsProbed(t, s.name, s.group, probed)
		if errors.Is(probed, unix.EPERM) {
			e.WaitFor(t, 1, "kevent_source_state", "source", s.name, "state", "denied")
			if s.protocol == unix.NETLINK_AUDIT {
				e.WaitLog(t, `need="CAP_AUDIT_READ, in the initial network namespace"`)
			}
		}
	}
}

// TestMonitorXfrm: the monitor prints the xfrm source's events as ip xfrm
// monitor would have them: the event, the policy's selector as object and
// its index as value.
func TestMonitorXfrm(t *testing.T) {
	t.Parallel()
	requireXfrm(t, "/proc/self/ns/net")
	p := startMonitor(t, "", "--protocol=xfrm", "--groups=sa,policy", "--decoder=xfrm")
	p.waitOutput(t, " cmdline !up protocol=6 groups=")
	sel := []string{"src", "10.7.0.0/24", "dst", "10.8.0.0/24", "dir", "out"}
	ipIn(t, "/proc/self/ns/net", append([]string{"xfrm", "policy", "add"}, sel...)...)
	ipIn(t, "/proc/self/ns/net", append([]string{"xfrm", "policy", "del"}, sel...)...)
	p.waitOutput(t, ` cmdline policy/new object="10.7.0.0/24->10.8.0.0/24 out" value=`)
	p.waitOutput(t, ` cmdline policy/del object="10.7.0.0/24->10.8.0.0/24 out" value=`)
}
