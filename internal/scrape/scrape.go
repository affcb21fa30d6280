// Package scrape serves /metrics so that clients that do not read their
// responses cannot starve other scrapes, fill the memory or fill the log.
//
// promhttp writes to the client while it encodes, so a client that does not
// read holds an in-flight slot until the server's WriteTimeout, and every
// metric family it fails to write is logged. The handler here runs promhttp's
// handler (format and compression negotiation, OpenMetrics) against an
// in-memory http.ResponseWriter, releases the in-flight slot, and only then
// copies the response to the client.
//
// Memory. Scrapes that ask for the same response (the same Accept and
// Accept-Encoding headers and query) while it is being encoded wait for it
// and share it: a crowd of scrapes costs one response. The responses being
// encoded or waiting for their clients hold at most MaxPendingBytes
// (counting a response being encoded at the size of the last one, and
// encoding one at a time until a first one has been; one response is
// always let through, however large). When a scrape needs a
// new response and the memory is short, the responses whose clients have
// had them for longer than WriteTimeout are dropped, oldest first, and
// their clients disconnected, so that clients that read slowly or not at
// all cannot keep a fresh scrape out for longer than WriteTimeout. If that
// does not free enough, the scrape gets 503 at once, before gathering.
//
// Slow clients. A client has WriteTimeout plus one second per MinWriteRate
// bytes of the response to receive it: the response is written in 64 KiB
// chunks, and the write of the chunk that ends at byte n must be done
// WriteTimeout + n/MinWriteRate after writing began. A client that reads at
// MinWriteRate on average or faster gets the whole response, however long
// that takes; one that falls behind is dropped when a write misses its
// deadline. The kernel buffers some MiB of a TCP connection, so writes run
// ahead of the client by that much: a client that stops reading is dropped
// once the pace catches up with what was buffered, after WriteTimeout plus
// that amount over MinWriteRate. Failed writes are logged at most every 10 s.
package scrape

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// DefaultWriteTimeout is Options.WriteTimeout when it is 0.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultMinWriteRate is Options.MinWriteRate when it is 0: 256 KiB/s,
	// a 16 MiB response in 74 s.
	DefaultMinWriteRate = 256 << 10
	// DefaultMaxPendingBytes is Options.MaxPendingBytes when it is 0.
	DefaultMaxPendingBytes = 64 << 20

	// chunkSize is how much is written under one write deadline.
	chunkSize = 64 << 10
)

// Options configures the handler of NewHandler. The zero value is usable.
type Options struct {
	// MaxRequestsInFlight limits the scrapes that gather and encode
	// metrics at once, not the ones being written to clients. 0 or less
	// means no limit.
	MaxRequestsInFlight int
	// MaxPendingBytes limits the memory of the responses being encoded
	// or waiting for their clients, as described in the package comment.
	// 0 means DefaultMaxPendingBytes; less than 0 means no limit.
	MaxPendingBytes int64
	// WriteTimeout and MinWriteRate (bytes per second) give a client
	// WriteTimeout plus one second per MinWriteRate bytes of the response
	// to receive it. 0 means DefaultWriteTimeout and DefaultMinWriteRate.
	WriteTimeout time.Duration
	MinWriteRate int
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
	maxBytes  int64         // less than 0: no limit
	timeout   time.Duration
	rate      int
	logger    log.Logger
	writeErrs ratelimit.Limiter

	mu sync.Mutex
	// encoding holds the responses being encoded, by the request that
	// asks for them (see key).
	encoding map[string]*response
	// held is the memory of the responses being encoded (counted at the
	// size of the last response until they are done) or written.
	held     int64
	lastSize int64
	sized    bool // set once a response has been encoded: lastSize is known
	// written holds the responses being written, which make room for
	// new ones when the memory is short.
	written map[*response]struct{}
}

// NewHandler returns an http.Handler that serves the metrics of g, in the
// format and encoding the request asks for, OpenMetrics included, as
// described in the package comment. Errors gathering metrics are reported
// as promhttp.ContinueOnError does: the metrics that could be gathered are
// served, and 500 only if there are none.
func NewHandler(g prometheus.Gatherer, opts Options) http.Handler {
	h := &handler{
		maxBytes: opts.MaxPendingBytes,
		timeout:  opts.WriteTimeout,
		rate:     opts.MinWriteRate,
		logger:   opts.Logger,
		encoding: make(map[string]*response),
		written:  make(map[*response]struct{}),
	}
	if h.maxBytes == 0 {
		h.maxBytes = DefaultMaxPendingBytes
	}
	if h.timeout <= 0 {
		h.timeout = DefaultWriteTimeout
	}
	if h.rate <= 0 {
		h.rate = DefaultMinWriteRate
	}
	if h.logger == nil {
		h.logger = log.NewNopLogger()
	}
	if opts.MaxRequestsInFlight > 0 {
		h.inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	h.promhttp = promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:          &errorLog{logger: h.logger},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          opts.Registry,
		EnableOpenMetrics: true,
	})
	return h
}

// key identifies what a request asks promhttp for: the format (Accept),
// the compression (Accept-Encoding) and the metrics (the query's name[]).
func key(r *http.Request) string {
	return r.Header.Get("Accept") + "\n" + r.Header.Get("Accept-Encoding") + "\n" + r.URL.RawQuery
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := key(r)
	h.mu.Lock()
	for !h.sized && len(h.encoding) > 0 && h.encoding[k] == nil {
		// No size to count a new response at yet: wait for the first.
		var first *response
		for _, first = range h.encoding {
			break
		}
		h.mu.Unlock()
		<-first.done
		h.mu.Lock()
	}
	rsp := h.encoding[k]
	shared := rsp != nil
	if shared {
		// Being encoded: share it.
		rsp.refs++
	} else {
		if h.maxBytes >= 0 && h.held > 0 && h.held+h.lastSize > h.maxBytes && !h.makeRoomLocked(h.held+h.lastSize-h.maxBytes) {
			h.mu.Unlock()
			http.Error(w, fmt.Sprintf(
				"Limit of memory for responses waiting for clients reached (%d bytes), try again later.", h.maxBytes,
			), http.StatusServiceUnavailable)
			return
		}
		if !acquire(h.inFlight) {
			h.mu.Unlock()
			http.Error(w, fmt.Sprintf(
				"Limit of concurrent requests reached (%d), try again later.", cap(h.inFlight),
			), http.StatusServiceUnavailable)
			return
		}
		rsp = &response{header: make(http.Header), refs: 1, done: make(chan struct{}), held: h.lastSize}
		h.encoding[k] = rsp
		h.held += rsp.held
	}
	h.mu.Unlock()
	defer h.unref(rsp)
	if shared {
		<-rsp.done
	} else {
		h.encode(r, rsp, k)
	}
	h.write(w, r, rsp)
}

// encode runs promhttp's handler into rsp, holding an in-flight slot that
// the caller acquired, and lets the requests that share rsp go on.
func (h *handler) encode(r *http.Request, rsp *response, k string) {
	complete := false
	defer func() {
		release(h.inFlight)
		if !complete {
			// promhttp panicked (net/http recovers): what it wrote
			// is no response.
			rsp.free()
			rsp.header, rsp.status, rsp.size = make(http.Header), http.StatusInternalServerError, 0
		}
		h.mu.Lock()
		delete(h.encoding, k)
		size := int64(len(rsp.chunks) * chunkSize)
		h.held += size - rsp.held
		rsp.held = size
		h.lastSize, h.sized = size, true
		rsp.encoded = time.Now()
		rsp.ctx, rsp.evict = context.WithCancel(context.Background())
		h.written[rsp] = struct{}{}
		h.mu.Unlock()
		close(rsp.done)
	}()
	h.promhttp.ServeHTTP(rsp, r)
	complete = true
}

// makeRoomLocked drops the responses that have been written for longer
// than the write timeout, oldest first, until need bytes are freed, and
// reports whether they were; it drops none if they cannot be. Their
// writers see the drop at once, and the last one frees the response.
func (h *handler) makeRoomLocked(need int64) bool {
	var old []*response
	var bytes int64
	cutoff := time.Now().Add(-h.timeout)
	for rsp := range h.written {
		if rsp.encoded.Before(cutoff) {
			old = append(old, rsp)
			bytes += rsp.held
		}
	}
	if bytes < need {
		return false
	}
	slices.SortFunc(old, func(a, b *response) int { return a.encoded.Compare(b.encoded) })
	for _, rsp := range old {
		if need <= 0 {
			break
		}
		need -= rsp.held
		h.held -= rsp.held
		rsp.held = 0
		delete(h.written, rsp)
		rsp.evict()
	}
	return true
}

// unref frees rsp when the last request that shares it is done with it.
func (h *handler) unref(rsp *response) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rsp.refs--; rsp.refs == 0 {
		h.held -= rsp.held
		delete(h.written, rsp)
		rsp.evict()
		rsp.free()
	}
}

// errEvicted is the write error of a client whose response was dropped to
// make room.
var errEvicted = errors.New("the response was dropped to make room for a newer scrape: memory for responses is short, and the client had had it for longer than the write timeout")

// pendingBytes returns the memory that responses hold.
func (h *handler) pendingBytes() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
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

// write copies rsp to w, dropping the client if it falls behind the pace
// of the package comment.
func (h *handler) write(w http.ResponseWriter, r *http.Request, rsp *response) {
	for k, v := range rsp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(rsp.size))

	// Without deadline support (a wrapping ResponseWriter that cannot
	// be unwrapped), the server's WriteTimeout is all there is.
	start := time.Now()
	rc := http.NewResponseController(w)
	deadlines := rc.SetWriteDeadline(start.Add(h.timeout)) == nil
	// A dropped response ends the write in progress.
	stop := context.AfterFunc(rsp.ctx, func() { _ = rc.SetWriteDeadline(time.Now()) })
	defer stop()
	w.WriteHeader(rsp.statusCode())
	written := 0
	for _, chunk := range rsp.chunks {
		if deadlines {
			due := h.timeout + time.Duration(float64(written+len(*chunk))/float64(h.rate)*float64(time.Second))
			_ = rc.SetWriteDeadline(start.Add(due))
		}
		// After the deadline is set: a drop from now on overrides it.
		if rsp.ctx.Err() != nil {
			h.logWriteError(r, errEvicted, written, rsp.size, start)
			return
		}
		n, err := w.Write(*chunk)
		written += n
		if err != nil {
			if rsp.ctx.Err() != nil {
				err = errEvicted
			}
			h.logWriteError(r, err, written, rsp.size, start)
			return
		}
	}
	// Flush the last bytes under the deadline too. net/http lifts the
	// deadline once the handler returns.
	if err := rc.Flush(); err != nil {
		h.logWriteError(r, err, written, rsp.size, start)
	}
}

func (h *handler) logWriteError(r *http.Request, err error, written, size int, start time.Time) {
	if q, ok := h.writeErrs.Allow(); ok {
		level.Warn(h.logger).Log(ratelimit.Quieted(q, "msg", "Dropped a scrape: writing to the client failed or fell behind the least rate",
			"remote", r.RemoteAddr, "written_bytes", written, "size_bytes", size, "duration", time.Since(start).Round(time.Millisecond),
			"err", err)...)
	}
}

// response is an http.ResponseWriter that keeps what is written in memory,
// in chunks of chunkSize: unlike a bytes.Buffer it grows without copying and
// wastes less than a chunk, which matters when a stuck client holds it, and
// the chunks are reused through chunkPool. Once done is closed it is not
// written to any more, and the requests that share it read it at once.
type response struct {
	header http.Header
	status int
	chunks []*[]byte // full except the last
	size   int

	done chan struct{}
	// Set when done is closed: when the response was encoded, and the
	// context that is cancelled to drop it.
	encoded time.Time
	ctx     context.Context
	evict   context.CancelFunc
	// refs counts the requests that share the response, and held is the
	// memory it is counted for; both are guarded by the handler's mu.
	refs int
	held int64
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
