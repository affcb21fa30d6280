//go:build vmtest

package vmtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

const auditConfig = `
sources:
  - {name: audit, protocol: audit, groups: [readlog], decoder: audit}
`

// Audit requests and their structs (linux/audit.h).
const (
	auditSet           = 1001 // AUDIT_SET, struct audit_status
	auditAddRule       = 1011 // AUDIT_ADD_RULE, struct audit_rule_data
	auditDelRule       = 1012
	auditStatusEnabled = 1 // AUDIT_STATUS_ENABLED
	auditFilterExit    = 4 // AUDIT_FILTER_EXIT
	auditAlways        = 2 // AUDIT_ALWAYS
	auditBitmaskSize   = 64
	// auditRuleDataLen is struct audit_rule_data without its buffer:
	// flags, action, field_count, mask, fields, values, fieldflags, buflen.
	auditRuleDataLen = 3*4 + 4*auditBitmaskSize*4 + 4
)

// auditRequest sends a request of type typ to the kernel's audit socket
// and returns the error its acknowledgement carries.
func auditRequest(typ uint16, payload []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	m := make([]byte, 16, 16+len(payload))
	binary.NativeEndian.PutUint32(m[0:4], uint32(16+len(payload)))
	binary.NativeEndian.PutUint16(m[4:6], typ)
	binary.NativeEndian.PutUint16(m[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(m[8:12], 1)
	if err := unix.Sendto(fd, append(m, payload...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		if n >= 20 && binary.NativeEndian.Uint16(buf[4:6]) == unix.NLMSG_ERROR {
			if errno := int32(binary.NativeEndian.Uint32(buf[16:20])); errno != 0 {
				return unix.Errno(-errno)
			}
			return nil
		}
	}
}

// setAuditing switches auditing on or off (AUDIT_SET, enabled).
func setAuditing(on bool) error {
	st := make([]byte, 40)
	binary.NativeEndian.PutUint32(st[0:4], auditStatusEnabled)
	if on {
		binary.NativeEndian.PutUint32(st[4:8], 1)
	}
	return auditRequest(auditSet, st)
}

// acctRule is an exit rule on acct(2), which nothing here calls: with a
// rule, tasks' audit contexts are real rather than dummies, which the
// kernel's seccomp records need.
func acctRule() []byte {
	r := make([]byte, auditRuleDataLen)
	binary.NativeEndian.PutUint32(r[0:4], auditFilterExit)
	binary.NativeEndian.PutUint32(r[4:8], auditAlways)
	nr := unix.SYS_ACCT
	binary.NativeEndian.PutUint32(r[12+4*(nr/32):], 1<<(nr%32))
	return r
}

// seccompGetppid is a helper: it installs a seccomp filter that kills the
// process at getppid(2), and calls it.
func seccompGetppid() int {
	runtime.LockOSThread()
	const (
		retKillProcess = 0x80000000 // SECCOMP_RET_KILL_PROCESS
		retAllow       = 0x7fff0000 // SECCOMP_RET_ALLOW
	)
	filter := []unix.SockFilter{
		// struct seccomp_data's nr.
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_GETPPID},
		{Code: unix.BPF_RET | unix.BPF_K, K: retKillProcess},
		{Code: unix.BPF_RET | unix.BPF_K, K: retAllow},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("error: PR_SET_NO_NEW_PRIVS:", err)
		return 1
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); e != 0 {
		fmt.Println("error: seccomp:", e)
		return 1
	}
	unix.Syscall(unix.SYS_GETPPID, 0, 0, 0)
	fmt.Println("error: getppid returned")
	return 3
}

// signalled runs cmd and checks that it ended by signal sig.
func signalled(t *testing.T, cmd *exec.Cmd, sig syscall.Signal) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("%v: %v, want death by %v\n%s", cmd.Args, err, sig, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != sig {
		t.Fatalf("%v: %v, want death by %v\n%s", cmd.Args, err, sig, out)
	}
}

// TestAuditCrashAndSeccomp switches auditing on (AUDIT_SET) with a rule,
// so that the kernel logs abnormal ends and seccomp actions, and checks
// that a shell killed by SIGSEGV gives an ANOM_ABEND about SIGSEGV and a
// process killed by its seccomp filter at getppid a SECCOMP about
// getppid (and an ANOM_ABEND about SIGSYS, its core dump), once each.
func TestAuditCrashAndSeccomp(t *testing.T) {
	if err := setAuditing(true); err != nil {
		t.Fatalf("AUDIT_SET enabled=1: %v", err)
	}
	t.Cleanup(func() { _ = setAuditing(false) })
	if err := auditRequest(auditAddRule, acctRule()); err != nil {
		t.Fatalf("AUDIT_ADD_RULE: %v", err)
	}
	t.Cleanup(func() { _ = auditRequest(auditDelRule, acctRule()) })

	e := startExporter(t, nil, auditConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "audit")

	signalled(t, exec.Command(*busybox, "sh", "-c", "kill -SEGV $$"), syscall.SIGSEGV)
	e.WaitFor(t, 1, "kevent_events_total", "source", "audit", "event", "ANOM_ABEND", "object", "SIGSEGV")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := exec.Command(self)
	h.Env = append(os.Environ(), helperEnv+"=seccomp-getppid")
	signalled(t, h, syscall.SIGSYS)
	e.WaitFor(t, 1, "kevent_events_total", "source", "audit", "event", "SECCOMP", "object", "getppid")

	mfs := e.Scrape(t)
	check(t, mfs, 0, "kevent_decode_errors_total", "source", "audit")
	check(t, mfs, 1, "kevent_events_total", "source", "audit", "event", "ANOM_ABEND", "object", "SIGSEGV")
	check(t, mfs, 1, "kevent_events_total", "source", "audit", "event", "SECCOMP", "object", "getppid")
	// The seccomp kill dumps core too: an abnormal end by SIGSYS.
	check(t, mfs, 1, "kevent_events_total", "source", "audit", "event", "ANOM_ABEND", "object", "SIGSYS")
	var seen []string
	for _, m := range mfs["kevent_events_total"].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		seen = append(seen, fmt.Sprintf("%s{%s} %v", l["event"], l["object"], m.GetCounter().GetValue()))
	}
	t.Logf("audit events: %s", strings.Join(seen, ", "))
	for _, n := range []string{"kevent_sequence_missing_total", "kevent_sequence_duplicates_total"} {
		t.Logf("%s", show(mfs, n, "source", "audit"))
	}
}
