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
)

// procNetNetlink lists the netlink sockets of the reader's network namespace.
const procNetNetlink = "/proc/net/netlink"

// maxProtocols is the number of classic netlink protocols (MAX_LINKS).
const maxProtocols = 32

// listedProtocols reads a netlink socket table in the format of
// /proc/net/netlink and reports which protocols (its Eth column) have a
// socket.
func listedProtocols(r io.Reader) ([maxProtocols]bool, error) {
	var listed [maxProtocols]bool
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
		if err != nil || p < 0 || p >= maxProtocols {
			return listed, fmt.Errorf("netlink socket table: bad protocol in line %q", sc.Text())
		}
		listed[p] = true
	}
	return listed, sc.Err()
}

// protocolWatcher waits for netlink protocols to be registered, for all the
// subscriptions whose protocol is missing at once: one read of
// /proc/net/netlink per interval however many wait, and none while nobody
// waits.
type protocolWatcher struct {
	path     string
	interval time.Duration

	mu      sync.Mutex
	waiters map[chan error]int // channel → protocol
	// running is set while the reading goroutine runs: waiters that come
	// and go between its reads must not start a second one.
	running bool
	reads   int // tables read, for tests
}

// protocols is the watcher every subscription of the process shares.
var protocols = &protocolWatcher{path: procNetNetlink, interval: protocolRetryInterval}

// wait returns nil once a socket of protocol shows in the table, the
// table's read error if it cannot be read (the caller then retries on its
// own), or ctx's error.
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

// run reads the table every interval until nobody waits.
func (w *protocolWatcher) run() {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		listed, err := w.read()
		w.mu.Lock()
		w.reads++
		for ch, p := range w.waiters {
			if err != nil || listed[p] {
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
		<-t.C
	}
}

func (w *protocolWatcher) read() ([maxProtocols]bool, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return [maxProtocols]bool{}, err
	}
	defer f.Close()
	return listedProtocols(f)
}

// readCount returns how many times the table was read.
func (w *protocolWatcher) readCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reads
}
