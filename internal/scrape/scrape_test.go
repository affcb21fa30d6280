package scrape

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
)

// hangGuard bounds every wait of these tests; none should come near it.
const hangGuard = 2 * time.Minute

// bigRegistry returns a registry whose text exposition is about 16.4 MiB,
// far more than a TCP connection buffers on loopback (tcp_wmem allows 4 MiB
// on the sending side, and a receiver that does not read keeps its initial
// window of about 128 KiB). Few series with long label values keep the
// encoding cheap under -race; the size is what matters here.
func bigRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scrape_test_series", Help: "A series with a long label value.",
	}, []string{"id", "payload"})
	reg.MustRegister(g)
	payload := strings.Repeat("x", 3400)
	for i := range 5000 {
		g.WithLabelValues(strconv.Itoa(i), payload).Set(float64(i))
	}
	return reg
}

const bigSeries = 5000

// serve serves h, wrapped in promhttp's instrumentation as main.go does, on
// a loopback port with main.go's server timeouts. It returns the address.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.InstrumentMetricHandler(prometheus.NewRegistry(), h))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// stuckClient sends a scrape and never reads the response.
func stuckClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// get scrapes url with the given request headers and reads the whole body.
func get(url string, header ...string) result {
	// No transparent gzip: the tests set Accept-Encoding themselves.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return result{err: err}
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rsp, err := client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer rsp.Body.Close()
	body, err := io.ReadAll(rsp.Body)
	return result{status: rsp.StatusCode, header: rsp.Header, body: body, err: err}
}

// parseText parses a text exposition and returns the number of samples per
// family.
func parseText(t *testing.T, r io.Reader) map[string]int {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parsing the response: %v", err)
	}
	n := make(map[string]int)
	for name, mf := range mfs {
		n[name] = len(mf.GetMetric())
	}
	return n
}

func logLines(buf *syncbuf.Buffer) []string {
	s := strings.TrimSuffix(buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// stuckScrape sends a scrape, reads the status line of the response and
// then reads no more.
func stuckScrape(t *testing.T, addr string) (net.Conn, int) {
	t.Helper()
	c := stuckClient(t, addr)
	c.SetReadDeadline(time.Now().Add(hangGuard))
	line, err := bufio.NewReaderSize(c, 16).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the status line: %v", err)
	}
	var proto string
	var code int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &code); err != nil {
		t.Fatalf("status line %q: %v", line, err)
	}
	return c, code
}

// closedAfter reads c to its end and returns how many bytes that was,
// failing if the server does not close it.
func closedAfter(t *testing.T, c net.Conn) int64 {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hangGuard))
	n, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection is still open")
	}
	return n
}

// heapBytes returns the live heap after the collections that empty the
// chunk pool.
func heapBytes() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestStuckClientsDoNotStarveScrapes: as many clients as
// MaxRequestsInFlight scrape and never read (promhttp's own limit then
// refuses every scrape). They hold no more than MaxPendingBytes, and once
// they have had their responses for WriteTimeout, a scrape that needs the
// memory drops the oldest and is served.
func TestStuckClientsDoNotStarveScrapes(t *testing.T) {
	var logs syncbuf.Buffer
	const maxBytes = 48 << 20 // two responses of bigRegistry
	h := NewHandler(bigRegistry(t), Options{
		MaxRequestsInFlight: 40,
		MaxPendingBytes:     maxBytes,
		WriteTimeout:        time.Second,
		MinWriteRate:        1, // no client is dropped for its pace here
		Logger:              log.NewLogfmtLogger(&logs),
	}).(*handler)
	addr := serve(t, h)

	codes := map[int]int{}
	var stuck []net.Conn // those that got a response
	for range 40 {
		c, code := stuckScrape(t, addr)
		codes[code]++
		if code == http.StatusOK {
			stuck = append(stuck, c)
		}
		if held := h.pendingBytes(); held > maxBytes {
			t.Fatalf("responses hold %d bytes, more than %d", held, maxBytes)
		}
	}
	t.Logf("40 clients that do not read: status codes %v; responses hold %.1f MiB", codes, float64(h.pendingBytes())/(1<<20))
	if codes[http.StatusOK] == 0 || codes[http.StatusOK]+codes[http.StatusServiceUnavailable] != 40 {
		t.Fatalf("status codes %v: want 200 and 503 only, some 200", codes)
	}

	// Retried until the stuck responses are a second old.
	var r result
	e2e.Eventually(t, "a scrape is served", func() bool {
		r = get("http://" + addr + "/metrics")
		return r.err == nil && r.status == http.StatusOK
	})
	size := len(r.body)
	t.Logf("response: %d bytes (%.1f MiB)", size, float64(size)/(1<<20))
	if size <= 16<<20 {
		t.Fatalf("response of %d bytes is too small to fill the socket buffers", size)
	}
	if n := parseText(t, bytes.NewReader(r.body))["scrape_test_series"]; n != bigSeries {
		t.Fatalf("parsed %d series, want %d", n, bigSeries)
	}
	// The oldest stuck client that got a response was disconnected to
	// make room, with less than the whole of it.
	if n := closedAfter(t, stuck[0]); n >= int64(size) {
		t.Fatalf("the oldest stuck connection got %d bytes, the whole response", n)
	}
	for _, c := range stuck {
		c.Close()
	}
	e2e.Eventually(t, "the responses are freed", func() bool { return h.pendingBytes() == 0 })
	lines := logLines(&logs)
	t.Logf("%d log lines: %q", len(lines), lines)
	if len(lines) > 5 || !strings.Contains(lines[0], "to make room for a newer scrape") {
		t.Fatalf("%d log lines, want at most 5, the first about making room", len(lines))
	}
}

// TestPendingBytesBounded: clients that do not read, one after the other,
// each with a response of its own, take no more memory than
// MaxPendingBytes; the scrapes beyond it get 503. (The limit counted
// responses: 200 such clients held 3.1 GB.)
func TestPendingBytesBounded(t *testing.T) {
	const maxBytes = 40 << 20
	h := NewHandler(bigRegistry(t), Options{
		MaxRequestsInFlight: 4,
		MaxPendingBytes:     maxBytes,
		WriteTimeout:        10 * time.Minute,
	}).(*handler)
	addr := serve(t, h)
	before := heapBytes()
	codes := map[int]int{}
	for range 24 {
		_, code := stuckScrape(t, addr)
		codes[code]++
	}
	grew := heapBytes() - before
	held := h.pendingBytes()
	t.Logf("24 clients that do not read: status codes %v; responses hold %.1f MiB, heap +%.1f MiB (limit %d MiB)",
		codes, float64(held)/(1<<20), float64(grew)/(1<<20), maxBytes>>20)
	if codes[http.StatusOK] == 0 || codes[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("status codes %v: want some 200 and some 503", codes)
	}
	if held > maxBytes {
		t.Fatalf("responses hold %d bytes, more than %d", held, maxBytes)
	}
	// The heap holds the responses and what the scrapes left for the next
	// collection to free.
	if grew > maxBytes+8<<20 {
		t.Fatalf("heap grew by %.1f MiB, more than the %d MiB limit and 8 MiB", float64(grew)/(1<<20), maxBytes>>20)
	}
	r := get("http://" + addr + "/metrics?name[]=none")
	want := fmt.Sprintf("Limit of memory for responses waiting for clients reached (%d bytes), try again later.\n", maxBytes)
	if r.err != nil || r.status != http.StatusServiceUnavailable || string(r.body) != want {
		t.Fatalf("scrape over the limit: status %d, %v, %q; want 503 %q", r.status, r.err, r.body, want)
	}
}

// TestCrowdSharesResponse: 16 clients that scrape at once, while a scrape
// is gathered, share its response, and read none of it: the memory is
// that of one response and further scrapes are served. (16 such clients
// with --web.max-requests=4 held every slot.)
func TestCrowdSharesResponse(t *testing.T) {
	c := &blockingCollector{
		desc:    prometheus.NewDesc("scrape_test_blocking", "Blocks.", nil, nil),
		entered: make(chan struct{}, 10),
		release: make(chan struct{}),
	}
	reg := bigRegistry(t)
	reg.MustRegister(c)
	h := NewHandler(reg, Options{MaxRequestsInFlight: 4, WriteTimeout: 10 * time.Minute}).(*handler)
	addr := serve(t, h)

	const crowd = 16
	codes := make(chan int, crowd)
	for range crowd {
		go func() {
			_, code := stuckScrape(t, addr)
			codes <- code
		}()
	}
	e2e.Eventually(t, "the crowd waits for one response", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, rsp := range h.encoding {
			return len(h.encoding) == 1 && rsp.refs == crowd
		}
		return false
	})
	close(c.release)
	for range crowd {
		if code := <-codes; code != http.StatusOK {
			t.Fatalf("a client of the crowd got %d", code)
		}
	}
	held := h.pendingBytes()
	r := get("http://" + addr + "/metrics")
	t.Logf("%d clients that do not read share %.1f MiB; a later scrape: status %d, %d bytes", crowd, float64(held)/(1<<20), r.status, len(r.body))
	if r.err != nil || r.status != http.StatusOK || parseText(t, bytes.NewReader(r.body))["scrape_test_series"] != bigSeries {
		t.Fatalf("scrape after the crowd: status %d, %v", r.status, r.err)
	}
	if held > int64(len(r.body))+chunkSize {
		t.Fatalf("the crowd holds %d bytes for a %d-byte response", held, len(r.body))
	}
}

// TestSlowClients checks the pace of the package comment: a client that
// reads faster than MinWriteRate gets the whole response though it takes
// longer than WriteTimeout, one that reads slower is dropped, and so are
// those that do not read.
func TestSlowClients(t *testing.T) {
	var logs syncbuf.Buffer
	h := NewHandler(bigRegistry(t), Options{
		MaxRequestsInFlight: 4,
		WriteTimeout:        time.Second,
		MinWriteRate:        2 << 20,
		Logger:              log.NewLogfmtLogger(&logs),
	}).(*handler)
	addr := serve(t, h)

	var stuck []net.Conn
	for range 3 {
		stuck = append(stuck, stuckClient(t, addr))
	}
	start := time.Now()
	paced, slow := make(chan result, 1), make(chan result, 1)
	go func() { paced <- slowScrape(addr, 300*time.Millisecond) }() // about 3.3 MiB/s
	go func() { slow <- slowScrape(addr, 1500*time.Millisecond) }() // about 0.7 MiB/s

	r := <-paced
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("client reading 3.3 MiB/s: status %d, %v", r.status, r.err)
	}
	if want := r.header.Get("Content-Length"); strconv.Itoa(len(r.body)) != want {
		t.Fatalf("client reading 3.3 MiB/s got %d bytes, Content-Length %s", len(r.body), want)
	}
	t.Logf("the client reading 3.3 MiB/s read %d bytes in %v", len(r.body), time.Since(start).Round(time.Millisecond))
	if n := parseText(t, bytes.NewReader(r.body))["scrape_test_series"]; n != bigSeries {
		t.Fatalf("parsed %d series, want %d", n, bigSeries)
	}
	s := <-slow
	t.Logf("the client reading 0.7 MiB/s: %d bytes in %v, %v", len(s.body), time.Since(start).Round(time.Millisecond), s.err)
	if s.err == nil || len(s.body) >= len(r.body) {
		t.Fatalf("the client reading 0.7 MiB/s got %d of %d bytes, error %v; want it dropped", len(s.body), len(r.body), s.err)
	}
	for i, c := range stuck {
		n := closedAfter(t, c)
		t.Logf("stuck connection %d: closed after %d bytes", i, n)
		if n >= int64(len(r.body)) {
			t.Fatalf("stuck connection %d got %d bytes, the whole response", i, n)
		}
	}
	e2e.Eventually(t, "the responses are freed", func() bool { return h.pendingBytes() == 0 })
	lines := logLines(&logs)
	t.Logf("log: %q", lines)
	if len(lines) != 1 || !strings.Contains(lines[0], "i/o timeout") {
		t.Fatalf("want one line about a write timeout, got %q", lines)
	}
}

// slowScrape scrapes with a small receive buffer and reads 1 MiB every
// pause, so that the server has to wait for it again and again.
func slowScrape(addr string, pause time.Duration) result {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return result{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangGuard))
	if err := c.(*net.TCPConn).SetReadBuffer(256 << 10); err != nil {
		return result{err: err}
	}
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		return result{err: err}
	}
	rsp, err := http.ReadResponse(bufio.NewReader(&pacedReader{r: c, pause: pause}), nil)
	if err != nil {
		return result{err: err}
	}
	body, err := io.ReadAll(rsp.Body)
	return result{status: rsp.StatusCode, header: rsp.Header, body: body, err: err}
}

// pacedReader sleeps for pause after every MiB.
type pacedReader struct {
	r     io.Reader
	pause time.Duration
	n     int
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.n >= 1<<20 {
		time.Sleep(p.pause)
		p.n = 0
	}
	n, err := p.r.Read(b[:min(len(b), 1<<20-p.n)])
	p.n += n
	return n, err
}

// blockingCollector's Collect waits until release is closed, unless
// passing is set.
type blockingCollector struct {
	desc    *prometheus.Desc
	entered chan struct{}
	release chan struct{}
	passing atomic.Bool
}

func (c *blockingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *blockingCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.passing.Load() {
		c.entered <- struct{}{}
		<-c.release
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1)
}

func TestMaxRequestsInFlight(t *testing.T) {
	c := &blockingCollector{
		desc:    prometheus.NewDesc("scrape_test_blocking", "Blocks.", nil, nil),
		entered: make(chan struct{}, 10),
		release: make(chan struct{}),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	h := NewHandler(reg, Options{MaxRequestsInFlight: 2})
	url := "http://" + serve(t, h) + "/metrics"
	// Until a first response gives their size, responses are encoded one
	// at a time.
	c.passing.Store(true)
	if r := get(url); r.err != nil || r.status != http.StatusOK {
		t.Fatalf("first scrape: status %d, %v, %q", r.status, r.err, r.body)
	}
	c.passing.Store(false)

	// Scrapes that ask for the same response share it: these ask for
	// different ones.
	results := make(chan result, 2)
	for _, q := range []string{"?a", "?b"} {
		go func() { results <- get(url + q) }()
	}
	for range 2 {
		select {
		case <-c.entered:
		case <-time.After(hangGuard):
			t.Fatal("the 2 scrapes did not reach Collect")
		}
	}

	r := get(url + "?c")
	want := "Limit of concurrent requests reached (2), try again later.\n"
	if r.err != nil || r.status != http.StatusServiceUnavailable || string(r.body) != want {
		t.Fatalf("3rd scrape: status %d, %v, %q; want 503 %q", r.status, r.err, r.body, want)
	}

	close(c.release)
	for range 2 {
		r := <-results
		if r.err != nil || r.status != http.StatusOK || !strings.Contains(string(r.body), "scrape_test_blocking 1") {
			t.Fatalf("blocked scrape: status %d, %v, %q", r.status, r.err, r.body)
		}
	}
	if r := get(url); r.err != nil || r.status != http.StatusOK {
		t.Fatalf("later scrape: status %d, %v, %q", r.status, r.err, r.body)
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		opts     Options
		inFlight int   // -1: no limit
		maxBytes int64 // -1: no limit
	}{
		{Options{}, -1, DefaultMaxPendingBytes},
		{Options{MaxRequestsInFlight: 2}, 2, DefaultMaxPendingBytes},
		{Options{MaxRequestsInFlight: 40, MaxPendingBytes: 50}, 40, 50},
		{Options{MaxPendingBytes: -1}, -1, -1},
	} {
		h := NewHandler(prometheus.NewRegistry(), tc.opts).(*handler)
		inFlight := -1
		if h.inFlight != nil {
			inFlight = cap(h.inFlight)
		}
		if inFlight != tc.inFlight || max(h.maxBytes, -1) != tc.maxBytes || h.timeout != DefaultWriteTimeout || h.rate != DefaultMinWriteRate {
			t.Errorf("%+v: in flight %d, bytes %d, timeout %v, rate %d", tc.opts, inFlight, h.maxBytes, h.timeout, h.rate)
		}
	}
}

func TestFormats(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "scrape_test_events_total", Help: "Events."})
	reg.MustRegister(c)
	c.Add(3)
	url := "http://" + serve(t, NewHandler(reg, Options{})) + "/metrics"

	// promhttp's current text format, as Prometheus has always parsed it.
	r := get(url)
	if want := "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"; r.err != nil || r.status != http.StatusOK || r.header.Get("Content-Type") != want {
		t.Fatalf("no Accept: status %d, %v, Content-Type %q, want %q", r.status, r.err, r.header.Get("Content-Type"), want)
	}
	if n := parseText(t, bytes.NewReader(r.body))["scrape_test_events_total"]; n != 1 || r.header.Get("Content-Encoding") != "" {
		t.Fatalf("no Accept: %d series, Content-Encoding %q:\n%s", n, r.header.Get("Content-Encoding"), r.body)
	}

	r = get(url, "Accept", "application/openmetrics-text;version=1.0.0")
	if r.err != nil || r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/openmetrics-text") {
		t.Fatalf("OpenMetrics: status %d, %v, Content-Type %q", r.status, r.err, r.header.Get("Content-Type"))
	}
	if !strings.HasSuffix(string(r.body), "# EOF\n") || !strings.Contains(string(r.body), "scrape_test_events_total 3") {
		t.Fatalf("OpenMetrics body:\n%s", r.body)
	}
	t.Logf("OpenMetrics Content-Type: %s", r.header.Get("Content-Type"))

	r = get(url, "Accept-Encoding", "gzip")
	if r.err != nil || r.status != http.StatusOK || r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip: status %d, %v, Content-Encoding %q", r.status, r.err, r.header.Get("Content-Encoding"))
	}
	if r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
		t.Fatalf("gzip: Content-Length %s for %d bytes", r.header.Get("Content-Length"), len(r.body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if n := parseText(t, zr)["scrape_test_events_total"]; n != 1 {
		t.Fatalf("gzip: %d series", n)
	}
}

// failingGatherer returns an error with every gather.
type failingGatherer struct{}

func (failingGatherer) Gather() ([]*dto.MetricFamily, error) { return nil, errors.New("broken") }

func TestGatherErrorsAreThrottled(t *testing.T) {
	var logs syncbuf.Buffer
	url := "http://" + serve(t, NewHandler(failingGatherer{}, Options{Logger: log.NewLogfmtLogger(&logs)})) + "/metrics"
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := get(url); r.err != nil || r.status != http.StatusInternalServerError {
				t.Errorf("status %d, %v, want 500", r.status, r.err)
			}
		}()
	}
	wg.Wait()
	lines := logLines(&logs)
	if len(lines) != 1 || !strings.Contains(lines[0], "broken") {
		t.Fatalf("want one line about the error, got %q", lines)
	}
}

// TestKeepAlive checks that the write deadline of a response does not
// outlive it: a later request for another handler on the same connection,
// after more than WriteStallTimeout, is served by a server without
// WriteTimeout.
func TestKeepAlive(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "scrape_test_up", Help: "Up."}))
	const stall = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", NewHandler(reg, Options{WriteTimeout: stall}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "Healthy") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var reused []bool
	for i, path := range []string{"/metrics", "/-/healthy"} {
		if i > 0 {
			time.Sleep(3 * stall)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+path, nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		}))
		rsp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, err := io.ReadAll(rsp.Body)
		rsp.Body.Close()
		if err != nil || rsp.StatusCode != http.StatusOK || !strings.Contains(string(body), []string{"scrape_test_up 0", "Healthy"}[i]) {
			t.Fatalf("%s: status %d, %v, %q", path, rsp.StatusCode, err, body)
		}
	}
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("the second request did not reuse the connection: %v", reused)
	}
}

// TestErrorLogRateLimited: promhttp's errors are logged once per interval,
// as the exporter's other repeating errors are, under the same key: none
// while nothing was kept quiet.
func TestErrorLogRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := &errorLog{logger: log.NewLogfmtLogger(&buf)}
	for range 3 {
		l.Println("boom")
	}
	if got, want := buf.String(), "level=error msg=\"Error serving metrics\" err=boom\n"; got != want {
		t.Errorf("logged %q, want %q", got, want)
	}
}
