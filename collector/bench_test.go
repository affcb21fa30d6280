package collector

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

const scrapeEvents = 10000

// BenchmarkRecord measures counting one event of a known name.
func BenchmarkRecord(b *testing.B) {
	s := NewSourceMetrics("bench", SourceOptions{PayloadInfo: true})
	evs := make([][]decoder.Event, 64)
	for i := range evs {
		evs[i] = []decoder.Event{{Name: []byte(fmt.Sprintf("event_%d", i)), Value: float64(i), HasValue: true, Payload: []byte(fmt.Sprint(i))}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Record(evs[i%len(evs)], 32, 0)
	}
}

// scrape serves one scrape of reg over HTTP, as Prometheus would get it.
func scrape(b *testing.B, h http.Handler) {
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("scrape: %d %s", w.Code, w.Body)
	}
	io.Copy(io.Discard, w.Body)
}

// BenchmarkScrape compares a scrape of the exporter holding 10 000 event
// names with client_golang's own CounterVec holding 10 000 children.
// Each exporter event has two series (events_total and
// last_timestamp_seconds; payload info off, no values), so "events" is
// 20 000 series; "events_total_only" counts only the 10 000 counter series
// by giving the registry nothing else... see the docs for the comparison.
func BenchmarkScrape(b *testing.B) {
	b.Run("kevent_10k_events", func(b *testing.B) {
		s := NewSourceMetrics("bench", SourceOptions{MaxEvents: scrapeEvents, Stats: func() SocketStats { return SocketStats{State: SourceUp} }})
		for i := 0; i < scrapeEvents; i++ {
			s.Record([]decoder.Event{{Name: []byte(fmt.Sprintf("event_%d", i))}}, 16, 0)
		}
		e := New()
		e.SetSources([]*SourceMetrics{s})
		reg := prometheus.NewRegistry()
		reg.MustRegister(e)
		h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			scrape(b, h)
		}
	})
	b.Run("client_golang_10k_counters", func(b *testing.B) {
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kevent_events_total", Help: "Events."}, []string{"source", "event"})
		for i := 0; i < scrapeEvents; i++ {
			cv.WithLabelValues("bench", fmt.Sprintf("event_%d", i)).Inc()
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(cv)
		h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			scrape(b, h)
		}
	})
}

// BenchmarkRecordNewNames measures counting events of names never seen
// before, up to a bound of a million, with a scrape every 100 000 names.
func BenchmarkRecordNewNames(b *testing.B) {
	names := make([][]decoder.Event, 1000000)
	for i := range names {
		names[i] = []decoder.Event{{Name: []byte(fmt.Sprintf("n%x", uint32(i)*2654435761))}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var s *SourceMetrics
	for i := 0; i < b.N; i++ {
		if i%len(names) == 0 {
			s = NewSourceMetrics("bench", SourceOptions{MaxEvents: len(names) + 1})
		}
		s.Record(names[i%len(names)], 16, 0)
		if i%100000 == 0 {
			s.snapshot()
		}
	}
}
