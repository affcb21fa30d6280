package scrape

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// TestStuckClientsDoNotStarveScrapes reproduces the outage of promhttp's
// own limit: as many clients as MaxRequestsInFlight scrape and never read.
func TestStuckClientsDoNotStarveScrapes(t *testing.T) {
	var logs syncbuf.Buffer
	// A stall timeout far beyond the test keeps all stuck clients stuck
	// until the test closes them; TestStalledClientsAreDropped covers it.
	h := NewHandler(bigRegistry(t), Options{
		MaxRequestsInFlight: 40,
		WriteStallTimeout:   10 * time.Minute,
		Logger:              log.NewLogfmtLogger(&logs),
	}).(*handler)
	addr := serve(t, h)

	var stuck []net.Conn
	for range 40 {
		stuck = append(stuck, stuckClient(t, addr))
	}
	waitFor(t, "the 40 stuck scrapes are encoded and writing", func() bool {
		return len(h.pending) == 40 && len(h.inFlight) == 0
	})

	r := get("http://" + addr + "/metrics")
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("scrape with 40 stuck clients: status %d, %v: %.200s", r.status, r.err, r.body)
	}
	size := len(r.body)
	t.Logf("response: %d bytes (%.1f MiB)", size, float64(size)/(1<<20))
	if size <= 16<<20 {
		t.Fatalf("response of %d bytes is too small to fill the socket buffers", size)
	}
	if n := parseText(t, bytes.NewReader(r.body))["scrape_test_series"]; n != bigSeries {
		t.Fatalf("parsed %d series, want %d", n, bigSeries)
	}
	// The 40 are still stuck: the scrape succeeded while they held their
	// responses.
	if n := len(h.pending); n != 40 {
		t.Fatalf("%d responses pending after the scrape, want the 40 stuck ones", n)
	}

	for _, c := range stuck {
		c.Close()
	}
	waitFor(t, "the server gave up on the closed clients", func() bool { return len(h.pending) == 0 })
	lines := logLines(&logs)
	t.Logf("%d log lines for 40 failed writes: %q", len(lines), lines)
	if len(lines) > 5 {
		t.Fatalf("%d log lines, want at most 5", len(lines))
	}
}

// TestStalledClientsAreDropped checks that a client that stops reading is
// dropped after WriteStallTimeout without progress, and that a client that
// reads slowly, longer than WriteStallTimeout in all, gets the whole
// response.
func TestStalledClientsAreDropped(t *testing.T) {
	var logs syncbuf.Buffer
	const stall = time.Second
	h := NewHandler(bigRegistry(t), Options{
		MaxRequestsInFlight: 4,
		WriteStallTimeout:   stall,
		Logger:              log.NewLogfmtLogger(&logs),
	}).(*handler)
	addr := serve(t, h)

	var stuck []net.Conn
	for range 3 {
		stuck = append(stuck, stuckClient(t, addr))
	}
	slow := make(chan result, 1)
	start := time.Now()
	go func() { slow <- slowScrape(addr, 300*time.Millisecond) }()

	var r result
	select {
	case r = <-slow:
	case <-time.After(hangGuard):
		t.Fatal("the slow scrape hangs")
	}
	waitFor(t, "the stuck clients were dropped", func() bool { return len(h.pending) == 0 })
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("slow scrape: status %d, %v", r.status, r.err)
	}
	if want := r.header.Get("Content-Length"); strconv.Itoa(len(r.body)) != want {
		t.Fatalf("slow scrape got %d bytes, Content-Length %s", len(r.body), want)
	}
	t.Logf("the slow client read %d bytes in %v", len(r.body), time.Since(start).Round(time.Millisecond))
	if n := parseText(t, bytes.NewReader(r.body))["scrape_test_series"]; n != bigSeries {
		t.Fatalf("parsed %d series, want %d", n, bigSeries)
	}

	// The server closed the stuck connections: reading them yields what
	// was buffered, then the end, and less than the whole response.
	for i, c := range stuck {
		c.SetReadDeadline(time.Now().Add(hangGuard))
		n, err := io.Copy(io.Discard, c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stuck connection %d is still open", i)
		}
		if n >= int64(len(r.body)) {
			t.Fatalf("stuck connection %d got %d bytes, the whole response", i, n)
		}
		t.Logf("stuck connection %d: closed after %d bytes (%v)", i, n, err)
	}
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

// blockingCollector's Collect waits until release is closed.
type blockingCollector struct {
	desc    *prometheus.Desc
	entered chan struct{}
	release chan struct{}
}

func (c *blockingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *blockingCollector) Collect(ch chan<- prometheus.Metric) {
	c.entered <- struct{}{}
	<-c.release
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

	results := make(chan result, 2)
	for range 2 {
		go func() { results <- get(url) }()
	}
	for range 2 {
		select {
		case <-c.entered:
		case <-time.After(hangGuard):
			t.Fatal("the 2 scrapes did not reach Collect")
		}
	}

	r := get(url)
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

func TestMaxPendingWrites(t *testing.T) {
	h := NewHandler(bigRegistry(t), Options{
		MaxPendingWrites:  3,
		WriteStallTimeout: 10 * time.Minute,
	}).(*handler)
	addr := serve(t, h)
	// name[] keeps the checking scrapes' responses small.
	url := "http://" + addr + "/metrics?name[]=none"

	var stuck []net.Conn
	for range 3 {
		stuck = append(stuck, stuckClient(t, addr))
	}
	waitFor(t, "the 3 stuck scrapes are encoded and writing", func() bool {
		return len(h.pending) == 3 && len(h.inFlight) == 0
	})

	r := get(url)
	want := "Limit of responses waiting for clients reached (3), try again later.\n"
	if r.err != nil || r.status != http.StatusServiceUnavailable || string(r.body) != want {
		t.Fatalf("scrape over the bound: status %d, %v, %q; want 503 %q", r.status, r.err, r.body, want)
	}

	for _, c := range stuck {
		c.Close()
	}
	waitFor(t, "the server gave up on the closed clients", func() bool { return len(h.pending) == 0 })
	if r := get(url); r.err != nil || r.status != http.StatusOK {
		t.Fatalf("scrape after the stuck clients left: status %d, %v, %q", r.status, r.err, r.body)
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		opts              Options
		inFlight, pending int // -1: no limit
	}{
		{Options{}, -1, MinPendingWrites},
		{Options{MaxRequestsInFlight: 2}, 2, MinPendingWrites},
		{Options{MaxRequestsInFlight: 40}, 40, 160},
		{Options{MaxRequestsInFlight: 40, MaxPendingWrites: 50}, 40, 50},
		{Options{MaxRequestsInFlight: 40, MaxPendingWrites: -1}, 40, -1},
	} {
		h := NewHandler(prometheus.NewRegistry(), tc.opts).(*handler)
		limit := func(c chan struct{}) int {
			if c == nil {
				return -1
			}
			return cap(c)
		}
		if limit(h.inFlight) != tc.inFlight || limit(h.pending) != tc.pending || h.stall != DefaultWriteStallTimeout {
			t.Errorf("%+v: in flight %d, pending %d, stall %v", tc.opts, limit(h.inFlight), limit(h.pending), h.stall)
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
	mux.Handle("/metrics", NewHandler(reg, Options{WriteStallTimeout: stall}))
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
