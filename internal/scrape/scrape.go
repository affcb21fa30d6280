// Package scrape serves /metrics so that clients that do not read their
// responses cannot starve other scrapes or fill the log.
//
// promhttp writes to the client while it encodes, so a client that does not
// read holds an in-flight slot until the server's WriteTimeout, and every
// metric family it fails to write is logged. The handler here runs promhttp's
// handler (format and compression negotiation, OpenMetrics) against an
// in-memory http.ResponseWriter, releases the in-flight slot, and only then
// copies the response to the client, 64 KiB at a time, each under a write
// deadline of WriteStallTimeout: a client that stops reading is dropped after
// WriteStallTimeout without progress, while a slow client that keeps reading
// gets the whole response. Failed writes are logged at most every 10 s.
//
// A response counts against MaxPendingWrites from the moment its scrape is
// accepted until it has been written or its client dropped, so responses take
// at most MaxPendingWrites times the size of a response (plus less than 64 KiB
// each) of memory. Scrapes over either limit get 503 at once, before
// gathering.
package scrape

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kevent-exporter/kevent_exporter/internal/ratelimit"
)

const (
	// DefaultWriteStallTimeout is Options.WriteStallTimeout when it is 0.
	DefaultWriteStallTimeout = 10 * time.Second
	// MinPendingWrites is the least default for Options.MaxPendingWrites.
	MinPendingWrites = 16

	// chunkSize is how much is written under one write deadline, so a
	// client has to read at least chunkSize per WriteStallTimeout
	// (64 KiB per 10 s, about 6.5 kB/s) to get a response.
	chunkSize = 64 << 10
)

// Options configures the handler of NewHandler. The zero value is usable.
type Options struct {
	// MaxRequestsInFlight limits the scrapes that gather and encode
	// metrics at once, not the ones being written to clients. 0 or less
	// means no limit.
	MaxRequestsInFlight int
	// MaxPendingWrites limits the scrapes whose response is held in
	// memory, from the moment a scrape is accepted until its response has
	// been written or its client dropped; it thus also bounds
	// MaxRequestsInFlight. Responses take at most MaxPendingWrites times
	// the size of a response (compressed if the client asked for it), plus
	// less than 64 KiB each, of memory. 0 means 4 times
	// MaxRequestsInFlight but at least MinPendingWrites; less than 0 means
	// no limit.
	MaxPendingWrites int
	// WriteStallTimeout is how long writing to a client may make no
	// progress before the client is dropped. 0 means
	// DefaultWriteStallTimeout.
	WriteStallTimeout time.Duration
	// Logger gets, at most once every 10 s each, failed writes to clients
	// and errors gathering or encoding metrics. nil means no logging.
	Logger log.Logger
	// Registry, if not nil, gets promhttp's counter of gathering and
	// encoding errors, promhttp_metric_handler_errors_total.
	Registry prometheus.Registerer
}

type handler struct {
	promhttp  http.Handler
	inFlight  chan struct{} // nil: no limit
	pending   chan struct{} // nil: no limit
	stall     time.Duration
	logger    log.Logger
	writeErrs ratelimit.Limiter
}

// NewHandler returns an http.Handler that serves the metrics of g, in the
// format and encoding the request asks for, OpenMetrics included, as
// described in the package comment. Errors gathering metrics are reported
// as promhttp.ContinueOnError does: the metrics that could be gathered are
// served, and 500 only if there are none.
func NewHandler(g prometheus.Gatherer, opts Options) http.Handler {
	h := &handler{
		stall:  opts.WriteStallTimeout,
		logger: opts.Logger,
	}
	if h.stall <= 0 {
		h.stall = DefaultWriteStallTimeout
	}
	if h.logger == nil {
		h.logger = log.NewNopLogger()
	}
	if opts.MaxRequestsInFlight > 0 {
		h.inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	switch n := opts.MaxPendingWrites; {
	case n == 0:
		h.pending = make(chan struct{}, max(4*opts.MaxRequestsInFlight, MinPendingWrites))
	case n > 0:
		h.pending = make(chan struct{}, n)
	}
	h.promhttp = promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:          &errorLog{logger: h.logger},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          opts.Registry,
		EnableOpenMetrics: true,
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !acquire(h.pending) {
		http.Error(w, fmt.Sprintf(
			"Limit of responses waiting for clients reached (%d), try again later.", cap(h.pending),
		), http.StatusServiceUnavailable)
		return
	}
	defer release(h.pending)

	if !acquire(h.inFlight) {
		http.Error(w, fmt.Sprintf(
			"Limit of concurrent requests reached (%d), try again later.", cap(h.inFlight),
		), http.StatusServiceUnavailable)
		return
	}
	rsp := h.encode(r)
	defer rsp.free()
	h.write(w, r, rsp)
}

// encode runs promhttp's handler into memory, holding an in-flight slot that
// the caller acquired.
func (h *handler) encode(r *http.Request) *response {
	defer release(h.inFlight)
	rsp := &response{header: make(http.Header)}
	h.promhttp.ServeHTTP(rsp, r)
	return rsp
}

// acquire takes a slot of sem if one is free; a nil sem has no limit.
func acquire(sem chan struct{}) bool {
	if sem == nil {
		return true
	}
	select {
	case sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func release(sem chan struct{}) {
	if sem != nil {
		<-sem
	}
}

// write copies rsp to w, dropping the client if a chunk cannot be written
// within the stall timeout.
func (h *handler) write(w http.ResponseWriter, r *http.Request, rsp *response) {
	for k, v := range rsp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(rsp.size))

	// Without deadline support (a wrapping ResponseWriter that cannot
	// be unwrapped), the server's WriteTimeout is all there is.
	rc := http.NewResponseController(w)
	deadlines := rc.SetWriteDeadline(time.Now().Add(h.stall)) == nil
	w.WriteHeader(rsp.statusCode())
	written := 0
	for _, chunk := range rsp.chunks {
		if deadlines {
			_ = rc.SetWriteDeadline(time.Now().Add(h.stall))
		}
		n, err := w.Write(*chunk)
		written += n
		if err != nil {
			h.logWriteError(r, err, written, rsp.size)
			return
		}
	}
	// Flush the last bytes under the deadline too. net/http lifts the
	// deadline once the handler returns.
	if err := rc.Flush(); err != nil {
		h.logWriteError(r, err, written, rsp.size)
	}
}

func (h *handler) logWriteError(r *http.Request, err error, written, size int) {
	if q, ok := h.writeErrs.Allow(); ok {
		level.Warn(h.logger).Log(ratelimit.Quieted(q, "msg", "Dropped a scrape: writing to the client failed",
			"remote", r.RemoteAddr, "written_bytes", written, "size_bytes", size, "err", err)...)
	}
}

// response is an http.ResponseWriter that keeps what is written in memory,
// in chunks of chunkSize: unlike a bytes.Buffer it grows without copying and
// wastes less than a chunk, which matters when a stuck client holds it, and
// the chunks are reused through chunkPool.
type response struct {
	header http.Header
	status int
	chunks []*[]byte // full except the last
	size   int
}

var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, chunkSize)
	return &b
}}

func (r *response) Header() http.Header { return r.header }

func (r *response) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *response) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n := len(p)
	for len(p) > 0 {
		if len(r.chunks) == 0 || len(*r.chunks[len(r.chunks)-1]) == chunkSize {
			r.chunks = append(r.chunks, chunkPool.Get().(*[]byte))
		}
		last := r.chunks[len(r.chunks)-1]
		k := min(len(p), chunkSize-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
	r.size += n
	return n, nil
}

// free returns the chunks to chunkPool.
func (r *response) free() {
	for _, c := range r.chunks {
		*c = (*c)[:0]
		chunkPool.Put(c)
	}
	r.chunks = nil
}

func (r *response) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// errorLog is promhttp's ErrorLog. promhttp logs gathering errors once per
// scrape and encoding errors once per metric family, so it is throttled too.
type errorLog struct {
	logger log.Logger
	limit  ratelimit.Limiter
}

func (l *errorLog) Println(v ...any) {
	if q, ok := l.limit.Allow(); ok {
		level.Error(l.logger).Log(ratelimit.Quieted(q, "msg", "Error serving metrics",
			"err", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))...)
	}
}
