package e2e_test

// Tests of the proc decoder against the host kernel's process events
// connector, which exists in the initial network namespace only.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// procHelperEnv makes the test binary a child process for the proc tests,
// before the tests' TestMain runs: "exit77" exits with status 77, "wait"
// says "ready" and waits to be killed. Both run four threads, so that the
// kernel reports a process's exit and three threads'.
const procHelperEnv = "KEVENT_TEST_PROC_HELPER"

func init() {
	switch os.Getenv(procHelperEnv) {
	case "exit77":
		procHelperThreads()
		os.Exit(77)
	case "wait":
		procHelperThreads()
		fmt.Println("ready")
		time.Sleep(time.Hour)
		os.Exit(1)
	}
}

// procHelperThreads starts three more OS threads.
func procHelperThreads() {
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			wg.Done()
			time.Sleep(time.Hour)
		}()
	}
	wg.Wait()
}

// procGroup is the connector's group of process events, CN_IDX_PROC.
const procGroup = 1

// procConfig is the proc source of the tests.
const procConfig = `
sources:
  - name: procs
    protocol: connector
    groups: [1]
    decoder: proc
`

// procExit is an exit of a thread group leader (a process) as an
// independent listener of the test reads it.
type procExit struct {
	pid  uint32
	code uint32
}

// procName names an exit as the proc decoder must, for the exits the test
// makes: exit/77, signal/SIGKILL, and SIGQUIT with or without a core.
func procName(code uint32) string {
	switch code & 0xffff {
	case 77 << 8:
		return "exit/77"
	case uint32(unix.SIGKILL):
		return "signal/SIGKILL"
	case uint32(unix.SIGQUIT):
		return "signal/SIGQUIT"
	case 0x80 | uint32(unix.SIGQUIT):
		return "coredump/SIGQUIT"
	}
	return ""
}

// procListener is the test's own subscription to the process events
// connector, in the initial network namespace, with a large buffer: it
// records every process's exit, in the order the kernel multicast them,
// which is the order every subscriber receives them in.
type procListener struct {
	fd int

	mu       sync.Mutex
	exits    []procExit
	threads  map[uint32]int // thread exits by process
	overflow bool
	done     chan struct{}
}

func listenProc(t *testing.T) *procListener {
	t.Helper()
	l := &procListener{threads: make(map[uint32]int), done: make(chan struct{})}
	err := testenv.InNetns(testenv.HostNetns(), func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
		if err != nil {
			return err
		}
		l.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
			return fmt.Errorf("joining CN_IDX_PROC: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000}); err != nil {
			return err
		}
		// PROC_CN_MCAST_LISTEN, then (on 6.6 and later) exits only.
		for i, op := range [][]byte{{1, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0x80}} {
			c := make([]byte, 36, 36+len(op))
			binary.NativeEndian.PutUint32(c[0:4], uint32(36+len(op)))
			binary.NativeEndian.PutUint16(c[4:6], unix.NLMSG_DONE)
			binary.NativeEndian.PutUint32(c[16:20], 1) // CN_IDX_PROC
			binary.NativeEndian.PutUint32(c[20:24], 1) // CN_VAL_PROC
			binary.NativeEndian.PutUint32(c[24:28], uint32(100+i))
			binary.NativeEndian.PutUint16(c[32:34], uint16(len(op)))
			if err := unix.Sendto(fd, append(c, op...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if l.fd > 0 {
			unix.Close(l.fd)
		}
		t.Fatalf("listening to process events: %v", err)
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

func (l *procListener) read(stop chan struct{}) {
	defer close(l.done)
	buf := make([]byte, 1<<16)
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
		case err != nil:
			continue
		}
		// nlmsghdr, cn_msg, then struct proc_event: what at 0, the exit's
		// pid, tgid and exit_code at 16, 20 and 24.
		if n < 36+28 || binary.NativeEndian.Uint32(buf[36:40]) != 0x80000000 {
			continue
		}
		pid, tgid, code := binary.NativeEndian.Uint32(buf[52:56]), binary.NativeEndian.Uint32(buf[56:60]), binary.NativeEndian.Uint32(buf[60:64])
		l.mu.Lock()
		if pid == tgid {
			l.exits = append(l.exits, procExit{pid: pid, code: code})
		} else {
			l.threads[tgid]++
		}
		l.mu.Unlock()
	}
}

// position returns the index of the last exit named name of process pid,
// or -1.
func (l *procListener) position(name string, pid uint32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.exits) - 1; i >= 0; i-- {
		if x := l.exits[i]; x.pid == pid && procName(x.code) == name {
			return i
		}
	}
	return -1
}

// between returns the pids of the exits named name after position from, up
// to and including position to.
func (l *procListener) between(name string, from, to int) []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []uint32
	for _, x := range l.exits[from+1 : to+1] {
		if procName(x.code) == name {
			pids = append(pids, x.pid)
		}
	}
	return pids
}

// nameOf waits until the listener has seen process pid exit, and returns
// the exit's name.
func (l *procListener) nameOf(t *testing.T, pid uint32) string {
	t.Helper()
	var name string
	e2e.Eventually(t, fmt.Sprintf("the test's listener sees process %d exit", pid), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, x := range l.exits {
			if x.pid == pid {
				name = procName(x.code)
				return true
			}
		}
		return false
	})
	return name
}

// procChild runs the test binary as a helper (procHelperEnv) and returns
// it running.
func procChild(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), procHelperEnv+"="+mode)
	return cmd
}

// exit77 runs a helper that exits with status 77 and returns its pid.
func exit77(t *testing.T) uint32 {
	t.Helper()
	cmd := procChild(t, "exit77")
	err := cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 77 {
		t.Fatalf("helper exited with %v, want status 77", err)
	}
	return uint32(cmd.Process.Pid)
}

// killed runs a helper, kills it with SIGKILL once its threads run, and
// returns its pid.
func killed(t *testing.T) uint32 {
	t.Helper()
	cmd := procChild(t, "wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q (%v), want ready", line, err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want SIGKILL", cmd.ProcessState)
	}
	return uint32(cmd.Process.Pid)
}

// quit runs sleep in dir with no limit on core dumps and ends it with
// SIGQUIT, whose default action dumps core (where the kernel's core_pattern
// lets it), and returns its pid.
func quit(t *testing.T, dir string) uint32 {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	unlimited := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_CORE, &unlimited, nil); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	_ = cmd.Wait()
	return uint32(cmd.Process.Pid)
}

// procScrape returns the proc source's count and last value (a pid) of
// each event named.
func procScrape(t *testing.T, e *e2e.Exporter, names []string) (counts map[string]float64, last map[string]uint32) {
	t.Helper()
	mfs := e.Scrape(t)
	counts, last = make(map[string]float64), make(map[string]uint32)
	for _, name := range names {
		counts[name], _ = e2e.Value(mfs, "kevent_events_total", "source", "procs", "event", name, "object", "")
		v, _ := e2e.Value(mfs, "kevent_event_last_value", "source", "procs", "event", name, "object", "")
		last[name] = uint32(v)
	}
	return counts, last
}

// caughtUp waits until, for each name, the last exit of that name the
// exporter counted is, in the listener's order, at or after the exit of
// process pids[name], and returns the exporter's counts and the listener's
// positions of those last exits (read in one scrape: the collector reads a
// source's counts and values under one lock).
func caughtUp(t *testing.T, e *e2e.Exporter, l *procListener, pids map[string]uint32) (map[string]float64, map[string]int) {
	t.Helper()
	names := slices.Sorted(maps.Keys(pids))
	var counts map[string]float64
	pos := make(map[string]int)
	e2e.Eventually(t, fmt.Sprintf("the exporter counts the exits of %v", pids), func() bool {
		var last map[string]uint32
		counts, last = procScrape(t, e, names)
		for _, n := range names {
			want := l.position(n, pids[n])
			if want < 0 {
				return false
			}
			p := l.position(n, last[n])
			if p < want {
				return false
			}
			pos[n] = p
		}
		return true
	})
	return counts, pos
}

// TestProcExits runs an exporter with a proc source in the initial network
// namespace (the connector's only one), as root and as uid 65534, and
// counts exactly the exits of n multi-threaded processes that exit with
// status 77, n that are killed with SIGKILL, and 2 that end with SIGQUIT
// (with a core dump where core_pattern allows one). Other processes of the
// machine may end alike meanwhile: a listener of the test's own, started
// before the exporter, records every process's exit in the kernel's order;
// the exporter's last value of each event (the pid) places its count in
// that order, so that the test knows exactly which exits, the test's and
// others', the exporter must have counted between two scrapes. Threads'
// exits, which the listener sees too, must not count.
//
// Whether uid 65534 may join the connector's group depends on the kernel's
// build, not on its version alone: a probe tries it, and where the kernel
// refuses, the exporter run as uid 65534 must have the source down and say
// why instead.
func TestProcExits(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "entering the initial network namespace")
	t.Run("root", func(t *testing.T) { testProcExits(t, nil) })
	t.Run("nobody", func(t *testing.T) {
		cred := []string{"--setuid=65534", "--setgid=65534"}
		probed := testenv.JoinAsNobody(t, testenv.HostNetns(), unix.NETLINK_CONNECTOR, procGroup)
		if probed == nil {
			t.Log("this kernel lets uid 65534 join the connector's group: the exits are counted")
			testProcExits(t, cred)
			return
		}
		t.Logf("this kernel does not let uid 65534 join the connector's group (%v): the source is down, saying why", probed)
		e := startExporterIn(t, testenv.HostNetns(), procConfig, cred...)
		e.WantAsProbed(t, "procs", procGroup, probed)
	})
}

func testProcExits(t *testing.T, cred []string) {
	l := listenProc(t)
	e := startExporterIn(t, testenv.HostNetns(), procConfig, cred...)
	e.WaitFor(t, 1, "kevent_source_up", "source", "procs")
	if cred != nil {
		if uid := processUID(t, e.Cmd.Process.Pid); uid != "65534" {
			t.Fatalf("exporter runs as uid %s, want 65534", uid)
		}
	}
	dir := t.TempDir()

	// Anchors: one exit of each kind, which the exporter has counted
	// when the first scrape is taken.
	anchors := map[string]uint32{"exit/77": exit77(t), "signal/SIGKILL": killed(t)}
	q := quit(t, dir)
	quitName := l.nameOf(t, q)
	if quitName == "" {
		t.Fatalf("sleep killed with SIGQUIT did not exit by SIGQUIT")
	}
	anchors[quitName] = q
	if pattern, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); strings.TrimSpace(string(pattern)) == "core" && quitName != "coredump/SIGQUIT" {
		t.Errorf("core_pattern is core and sleep ran without a core limit in a writable directory, but its SIGQUIT exit is %s", quitName)
	}
	counts0, pos0 := caughtUp(t, e, l, anchors)

	const n = 5
	ours := make(map[string][]uint32)
	for range n {
		ours["exit/77"] = append(ours["exit/77"], exit77(t))
		ours["signal/SIGKILL"] = append(ours["signal/SIGKILL"], killed(t))
	}
	for range 2 {
		ours[quitName] = append(ours[quitName], quit(t, dir))
	}
	lasts := make(map[string]uint32)
	for name, pids := range ours {
		lasts[name] = pids[len(pids)-1]
	}
	counts1, pos1 := caughtUp(t, e, l, lasts)

	for name, pids := range ours {
		want := l.between(name, pos0[name], pos1[name])
		for _, p := range pids {
			if !slices.Contains(want, p) {
				t.Errorf("%s: the listener did not see process %d among the exits %v", name, p, want)
			}
		}
		if got := counts1[name] - counts0[name]; got != float64(len(want)) {
			t.Errorf("%s: the exporter counted %v, the kernel sent %d (the test's %d and %d others)", name, got, len(want), len(pids), len(want)-len(pids))
		} else {
			t.Logf("%s: counted %v (the test's %d and %d others)", name, got, len(pids), len(want)-len(pids))
		}
	}
	l.mu.Lock()
	for _, p := range ours["exit/77"] {
		if l.threads[p] < 3 {
			t.Errorf("the listener saw %d thread exits of helper %d, want 3 or more: the test does not show threads are not counted", l.threads[p], p)
		}
	}
	overflow := l.overflow
	l.mu.Unlock()
	if overflow {
		t.Fatal("the test's listener lost process events (ENOBUFS): the counts above prove nothing")
	}
	mfs := e.Scrape(t)
	for _, m := range []string{"kevent_decode_errors_total", "kevent_datagrams_lost_total"} {
		if v, ok := e2e.Value(mfs, m, "source", "procs"); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", m, v, ok)
		}
	}
}
