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
	var want [maxProtocols]bool
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
	waitUntil(t, "10 reads", func() bool { return w.readCount() >= 10 })
	w.mu.Lock()
	n := len(w.waiters)
	w.mu.Unlock()
	if n != waiters {
		t.Fatalf("%d waiting, want %d", n, waiters)
	}
	before := w.readCount()
	time.Sleep(200 * time.Millisecond) // 10 intervals: one reader reads ~10 times, not ~2560
	if reads := w.readCount() - before; reads > 20 {
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
	stopped := w.readCount()
	time.Sleep(100 * time.Millisecond) // 5 intervals in which nothing may be read
	if w.readCount() != stopped {
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
		waitUntil(t, "the waiter is registered", func() bool {
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
	before := w.readCount()
	time.Sleep(200 * time.Millisecond) // 10 intervals: one reader reads ~10 times, 11 readers ~110
	if reads := w.readCount() - before; reads > 20 {
		t.Fatalf("%d reads in 10 intervals: more than one reader", reads)
	}
}
