package netlinksrc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// procNetNetlink lists the netlink sockets of the reader's network namespace.
const procNetNetlink = "/proc/net/netlink"

// listedProtocols reads a netlink socket table in the format of
// /proc/net/netlink and reports which protocols (its Eth column) have a
// socket.
func listedProtocols(r io.Reader) ([decoder.MaxProtocols]bool, error) {
	var listed [decoder.MaxProtocols]bool
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return listed, err
		}
		return listed, errors.New("netlink socket table is empty")
	}
	if h := strings.Fields(sc.Text()); len(h) < 2 || h[1] != "Eth" {
		return listed, fmt.Errorf("netlink socket table: unexpected header %q", sc.Text())
	}
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		p, err := strconv.Atoi(fields[1])
		if err != nil || p < 0 || p >= decoder.MaxProtocols {
			return listed, fmt.Errorf("netlink socket table: bad protocol in line %q", sc.Text())
		}
		listed[p] = true
	}
	return listed, sc.Err()
}

// readPacing bounds the share of a core the watcher spends reading the
// socket table: after a read that took d it waits at least readPacing
// times d, so at most 2 %. A read of a table of 10 000 sockets takes tens
// of milliseconds, of a few dozen well under one.
const readPacing = 50

// diagLookTimeout bounds the wait for sock_diag's answer.
const diagLookTimeout = 5 * time.Second

// protocolWatcher waits for netlink protocols to be registered, for all the
// subscriptions whose protocol is missing at once: one look per interval
// however many wait, and none while nobody waits.
//
// It asks sock_diag (NETLINK_SOCK_DIAG) for the sockets of each protocol
// waited for, which costs the same however many netlink sockets other
// protocols have. Where sock_diag cannot answer (a kernel without
// netlink_diag), it reads the socket table in /proc/net/netlink instead,
// which the kernel walks from its start again for every page read: with
// 10 000 sockets that is tens of milliseconds of CPU, and readPacing
// spaces such reads out.
type protocolWatcher struct {
	path     string
	interval time.Duration
	// diag says to ask sock_diag first; it is cleared for good when
	// sock_diag cannot answer. It and probe are owned by the goroutine
	// that looks.
	diag  bool
	probe *netlink.Conn

	mu      sync.Mutex
	waiters map[chan error]int // channel → protocol
	// running is set while the looking goroutine runs: waiters that come
	// and go between its looks must not start a second one.
	running bool
	looks   int // for tests
}

// protocols is the watcher every subscription of the process shares.
var protocols = &protocolWatcher{path: procNetNetlink, interval: protocolRetryInterval, diag: true}

// wait returns nil once a socket of protocol shows, the error of the look
// if the watcher cannot look (the caller then retries on its own), or ctx's
// error.
func (w *protocolWatcher) wait(ctx context.Context, protocol int) error {
	ch := make(chan error, 1)
	w.mu.Lock()
	if w.waiters == nil {
		w.waiters = make(map[chan error]int)
	}
	w.waiters[ch] = protocol
	if !w.running {
		w.running = true
		go w.run()
	}
	w.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.waiters, ch)
		w.mu.Unlock()
		return ctx.Err()
	}
}

// run looks every interval, reads of the table paced by readPacing, until
// nobody waits.
func (w *protocolWatcher) run() {
	defer w.closeProbe()
	for {
		var wanted [decoder.MaxProtocols]bool
		w.mu.Lock()
		for _, p := range w.waiters {
			wanted[p] = true
		}
		w.mu.Unlock()
		// Waiters that came after wanted was taken are not answered by
		// this look: they wait for the next.
		listed, read, err := w.look(wanted)
		w.mu.Lock()
		w.looks++
		for ch, p := range w.waiters {
			if err != nil || (wanted[p] && listed[p]) {
				ch <- err
				delete(w.waiters, ch)
			}
		}
		if len(w.waiters) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		time.Sleep(max(w.interval, readPacing*read))
	}
}

// look reports which of the wanted protocols have a socket in the
// namespace, and how long reading the table took if it was read.
func (w *protocolWatcher) look(wanted [decoder.MaxProtocols]bool) (listed [decoder.MaxProtocols]bool, read time.Duration, err error) {
	if w.diag {
		listed, err := w.lookDiag(wanted)
		if err == nil {
			return listed, 0, nil
		}
		// No netlink_diag (ENOENT), or a kernel that refuses: the
		// table from now on.
		w.diag = false
		w.closeProbe()
	}
	start := time.Now()
	listed, err = w.read()
	return listed, time.Since(start), err
}

// lookDiag asks sock_diag for the sockets of each wanted protocol.
func (w *protocolWatcher) lookDiag(wanted [decoder.MaxProtocols]bool) ([decoder.MaxProtocols]bool, error) {
	var listed [decoder.MaxProtocols]bool
	if w.probe == nil {
		c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, nil)
		if err != nil {
			return listed, err
		}
		w.probe = c
	}
	for p, ok := range wanted {
		if !ok {
			continue
		}
		// struct netlink_diag_req: family, protocol, pad, inode 0 (any),
		// show 0 (the basic record only), cookie.
		req := make([]byte, 20)
		req[0], req[1] = unix.AF_NETLINK, byte(p)
		if err := w.probe.SetReadDeadline(time.Now().Add(diagLookTimeout)); err != nil {
			return listed, err
		}
		socks, err := w.probe.Execute(netlink.Message{
			Header: netlink.Header{Type: unix.SOCK_DIAG_BY_FAMILY, Flags: netlink.Request | netlink.Dump},
			Data:   req,
		})
		if err != nil {
			return listed, fmt.Errorf("sock_diag: netlink sockets of protocol %d: %w", p, err)
		}
		listed[p] = len(socks) > 0
	}
	return listed, nil
}

func (w *protocolWatcher) closeProbe() {
	if w.probe != nil {
		w.probe.Close()
		w.probe = nil
	}
}

func (w *protocolWatcher) read() ([decoder.MaxProtocols]bool, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return [decoder.MaxProtocols]bool{}, err
	}
	defer f.Close()
	return listedProtocols(f)
}

// lookCount returns how many times the watcher looked.
func (w *protocolWatcher) lookCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.looks
}
