package netlinksrc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// A /proc/net/netlink of a 6.x kernel: route (0), kobject_uevent (15) and
// generic (16) kernel sockets, and a user socket on usersock (2).
const netlinkTable = `sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
0000000000000000 0   0          00000000 0        0        0     2        0        8
0000000000000000 2   4001       00000010 0        0        0     2        0        31337
0000000000000000 15  0          00000000 0        0        0     2        0        4
0000000000000000 16  0          00000000 0        0        0     2        0        9
`

func TestListedProtocols(t *testing.T) {
	got, err := listedProtocols(strings.NewReader(netlinkTable))
	if err != nil {
		t.Fatal(err)
	}
	var want [decoder.MaxProtocols]bool
	want[0], want[2], want[15], want[16] = true, true, true, true
	if got != want {
		t.Fatalf("listed = %v, want %v", got, want)
	}
	for _, bad := range []struct{ name, table, err string }{
		{"empty", "", "netlink socket table is empty"},
		{"other file", "Inter-|   Receive\n face |bytes\n", `netlink socket table: unexpected header "Inter-|   Receive"`},
		{"bad protocol", "sk Eth Pid\n0 32 0\n", `netlink socket table: bad protocol in line "0 32 0"`},
		{"not a number", "sk Eth Pid\n0 x 0\n", `netlink socket table: bad protocol in line "0 x 0"`},
	} {
		if _, err := listedProtocols(strings.NewReader(bad.table)); err == nil || err.Error() != bad.err {
			t.Errorf("%s: error %v, want %q", bad.name, err, bad.err)
		}
	}
}

func TestListedProtocolsHost(t *testing.T) {
	// The kernel's own uevent socket is in every network namespace.
	f, err := os.Open(procNetNetlink)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed, err := listedProtocols(f)
	if err != nil || !listed[unix.NETLINK_KOBJECT_UEVENT] {
		t.Fatalf("listed = %v, %v; want kobject_uevent listed", listed, err)
	}
}

// TestProtocolWatcherShared has 256 subscriptions wait for a protocol: the
// table is read once per interval for all of them, and all are released
// when the protocol shows up.
func TestProtocolWatcherShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "netlink")
	if err := os.WriteFile(path, []byte(netlinkTable), 0o644); err != nil {
		t.Fatal(err)
	}
	w := &protocolWatcher{path: path, interval: 20 * time.Millisecond}
	const waiters = 256
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.wait(ctx, 29)
		}()
	}
	e2e.Eventually(t, "10 reads", func() bool { return w.lookCount() >= 10 })
	w.mu.Lock()
	n := len(w.waiters)
	w.mu.Unlock()
	if n != waiters {
		t.Fatalf("%d waiting, want %d", n, waiters)
	}
	before := w.lookCount()
	time.Sleep(200 * time.Millisecond) // 10 intervals: one reader reads ~10 times, not ~2560
	if reads := w.lookCount() - before; reads > 20 {
		t.Fatalf("%d reads in 10 intervals for %d waiters: not shared", reads, waiters)
	}
	if err := os.WriteFile(path, []byte(netlinkTable+"0000000000000000 29  0 00000000 0 0 0 2 0 77\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
	}
	// Nobody waits: the watcher stops reading.
	stopped := w.lookCount()
	time.Sleep(100 * time.Millisecond) // 5 intervals in which nothing may be read
	if w.lookCount() != stopped {
		t.Fatal("the watcher reads with nobody waiting")
	}
}

func TestProtocolWatcherUnreadable(t *testing.T) {
	w := &protocolWatcher{path: filepath.Join(t.TempDir(), "missing"), interval: time.Millisecond}
	if err := w.wait(context.Background(), 29); !os.IsNotExist(err) {
		t.Fatalf("wait on a missing table: %v, want a not-exist error", err)
	}
}

// TestProtocolWatcherOneReader: waiters that give up and others that come,
// between two reads, start no second reader (a source on a missing
// protocol replaced by reload after reload).
func TestProtocolWatcherOneReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "netlink")
	if err := os.WriteFile(path, []byte(netlinkTable), 0o644); err != nil {
		t.Fatal(err)
	}
	w := &protocolWatcher{path: path, interval: 20 * time.Millisecond}
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.wait(ctx, 29)
		}()
		e2e.Eventually(t, "the waiter is registered", func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return len(w.waiters) == 1
		})
		cancel()
		<-done
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.wait(ctx, 29)
	before := w.lookCount()
	time.Sleep(200 * time.Millisecond) // 10 intervals: one reader reads ~10 times, 11 readers ~110
	if reads := w.lookCount() - before; reads > 20 {
		t.Fatalf("%d reads in 10 intervals: more than one reader", reads)
	}
}

// TestDiagMatchesTable: sock_diag lists the protocols the socket table
// lists, the kernel's own sockets included. On a kernel whose sock_diag
// cannot answer, the watcher reads the table instead.
func TestDiagMatchesTable(t *testing.T) {
	w := &protocolWatcher{path: procNetNetlink, diag: true}
	defer w.closeProbe()
	var all [decoder.MaxProtocols]bool
	for p := range all {
		all[p] = true
	}
	listed, _, err := w.look(all)
	if err != nil {
		t.Fatal(err)
	}
	if !w.diag {
		t.Log("sock_diag cannot list netlink sockets on this kernel (no netlink_diag): the watcher reads /proc/net/netlink")
	}
	table, err := w.read()
	if err != nil {
		t.Fatal(err)
	}
	// Usersock sockets come and go with the other tests of the package.
	listed[unix.NETLINK_USERSOCK], table[unix.NETLINK_USERSOCK] = false, false
	if listed != table {
		t.Fatalf("looked up %v, the table lists %v", listed, table)
	}
	if !listed[unix.NETLINK_ROUTE] || !listed[unix.NETLINK_KOBJECT_UEVENT] || listed[29] {
		t.Fatalf("listed %v: want route and kobject_uevent, not 29", listed)
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openSockets opens and binds n netlink sockets until the test ends.
func openSockets(t *testing.T, n int) {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(n + 1024); lim.Cur < need {
		// As root, the hard limit can be raised too.
		saved := lim
		lim.Cur, lim.Max = need, max(lim.Max, need)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("raising RLIMIT_NOFILE to %d: %v", need, err)
		}
		t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &saved) })
	}
	fds := make([]int, 0, n)
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	for range n {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_USERSOCK)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
		// Bound, a socket is in the table.
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWatcherCostWithManySockets: a source waiting for an unregistered
// protocol, with 10 000 netlink sockets open in its namespace, costs a small
// share of a core, whether the watcher asks sock_diag or, where it cannot,
// reads the table. Reading /proc/net/netlink every 100 ms took 58 % of one.
func TestWatcherCostWithManySockets(t *testing.T) {
	const sockets = 10000
	testenv.RequireRoot(t, "10 000 sockets need RLIMIT_NOFILE raised, and the test needs a network namespace of its own")
	openSockets(t, sockets)
	c0 := cpuTime(t)
	if _, err := (&protocolWatcher{path: procNetNetlink}).read(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d sockets: reading /proc/net/netlink once takes %v of CPU", sockets, cpuTime(t)-c0)
	for _, diag := range []bool{true, false} {
		name := map[bool]string{true: "sock_diag", false: "table"}[diag]
		t.Run(name, func(t *testing.T) {
			w := &protocolWatcher{path: procNetNetlink, interval: protocolRetryInterval, diag: diag}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.wait(ctx, 29) }()
			defer func() {
				cancel()
				<-done
			}()
			e2e.Eventually(t, "the watcher looked once", func() bool { return w.lookCount() >= 1 })
			looks := 10
			if !w.diag {
				// Reading the table, the watcher waits 50 reads' time
				// between looks: one wait and one look.
				looks = 1
			}
			c0, w0, l0 := cpuTime(t), time.Now(), w.lookCount()
			deadline := time.Now().Add(time.Minute)
			for w.lookCount() < l0+looks {
				if time.Now().After(deadline) {
					t.Fatalf("%d looks in a minute, want %d", w.lookCount()-l0, looks)
				}
				// Seldom: the measurement is of the watcher.
				time.Sleep(50 * time.Millisecond)
			}
			cpu, wall := cpuTime(t)-c0, time.Since(w0)
			share := float64(cpu) / float64(wall)
			t.Logf("waiting with %d sockets open (sock_diag: %v): %d looks in %v took %v of CPU, %.2f %% of a core",
				sockets, w.diag, w.lookCount()-l0, wall.Round(time.Millisecond), cpu, 100*share)
			if share > 0.05 {
				t.Fatalf("waiting for a protocol with %d netlink sockets open takes %.1f %% of a core, more than 5 %%", sockets, 100*share)
			}
		})
	}
}
