package collector

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
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
		s := NewSourceMetrics("bench", SourceOptions{MaxEvents: scrapeEvents, Stats: func() srcinfo.Stats { return srcinfo.Stats{State: srcinfo.StateUp} }})
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

// BenchmarkRecordObjects measures counting an event about an object: one
// the source keeps and knows, one its exclude filter counts under no
// object (a different name each time, as pods' interfaces are), and a
// known one while 1 000 removed objects wait out their grace period. None
// may allocate.
func BenchmarkRecordObjects(b *testing.B) {
	exclude := regexp.MustCompile(`^(?:(veth|cali|lxc|cilium_|flannel|cni|podman|docker|tunl).*|br-[0-9a-f]{12})$`)
	known := make([][]decoder.Event, 64)
	for i := range known {
		known[i] = []decoder.Event{{Name: []byte("link/up"), Object: []byte(fmt.Sprintf("eth%d", i)), Value: float64(i), HasValue: true, Payload: []byte("up")}}
	}
	excluded := make([][]decoder.Event, 4096)
	for i := range excluded {
		excluded[i] = []decoder.Event{{Name: []byte("link/up"), Object: []byte(fmt.Sprintf("veth%08x", uint32(i)*2654435761)), Value: float64(i), HasValue: true, Payload: []byte("up")}}
	}
	for _, bc := range []struct {
		name    string
		events  [][]decoder.Event
		removed int
	}{
		{"known", known, 0},
		{"excluded", excluded, 0},
		{"known_with_1000_removed", known, 1000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := NewSourceMetrics("bench", SourceOptions{PayloadInfo: true, Exclude: exclude, ForgetAfter: time.Hour})
			for i := range bc.removed {
				o := []byte(fmt.Sprintf("gone%d", i))
				s.Record([]decoder.Event{{Name: []byte("link/del"), Object: o, Gone: o}}, 32, 0)
			}
			for _, evs := range bc.events {
				s.Record(evs, 32, 0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.Record(bc.events[i%len(bc.events)], 32, 0)
			}
		})
	}
}

// BenchmarkScrapeAfterForgetting measures a scrape of a source keeping 100
// interfaces (400 series pairs) after a run in which 0, 10 000 or 100 000
// others came and went (new, up, down, del, forgotten with forget_after
// 0s and a scrape every 100). The scrape's cost and the heap after it
// (heap-bytes, after a GC) must not grow with the number forgotten.
func BenchmarkScrapeAfterForgetting(b *testing.B) {
	for _, forgotten := range []int{0, 10000, 100000} {
		b.Run(fmt.Sprintf("forgotten=%d", forgotten), func(b *testing.B) {
			s := NewSourceMetrics("bench", SourceOptions{PayloadInfo: true, Stats: func() srcinfo.Stats { return srcinfo.Stats{State: srcinfo.StateUp} }})
			life := func(o []byte) []decoder.Event {
				return []decoder.Event{
					{Name: []byte("link/new"), Object: o, Payload: []byte("down")},
					{Name: []byte("link/up"), Object: o, Value: 1, HasValue: true, Payload: []byte("up")},
					{Name: []byte("link/down"), Object: o, Value: 2, HasValue: true, Payload: []byte("down")},
				}
			}
			for i := range 100 {
				s.Record(life([]byte(fmt.Sprintf("eth%d", i))), 32, 0)
				s.Record([]decoder.Event{{Name: []byte("link/del"), Object: []byte(fmt.Sprintf("keep%d", i))}}, 32, 0)
			}
			for i := range forgotten {
				o := []byte(fmt.Sprintf("veth%08x", uint32(i)*2654435761))
				s.Record(life(o), 32, 0)
				s.Record([]decoder.Event{{Name: []byte("link/del"), Object: o, Gone: o}}, 32, 0)
				if i%100 == 99 {
					s.snapshot()
				}
			}
			s.snapshot()
			s.snapshot()
			if got := s.forgotten; got != uint64(forgotten) {
				b.Fatalf("forgotten %d, want %d", got, forgotten)
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
			b.StopTimer()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc), "heap-bytes")
			runtime.KeepAlive(s)
		})
	}
}
