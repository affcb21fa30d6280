//go:build vmtest

package vmtest

import (
	"testing"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// TestForgedModuleMessage: root userspace multicasts a well-formed kevent
// message on the module's protocol and group. The exporter takes only the
// kernel's (port ID 0) on a module's protocol: the forgery is counted as
// rejected, the module's own event is counted as an event.
func TestForgedModuleMessage(t *testing.T) {
	kevent := useModule(t, "kevent")
	kevent.load(t, classicParams+" heartbeat_ms=0")
	e := startExporter(t, nobody, keventConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "kevent")

	forger, err := nlsend.NewSender(29, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	if err := forger.Send(nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: 1, Instance: 1, Name: "forged", Value: 1})); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_datagrams_rejected_total", "source", "kevent", "reason", "not_kernel")
	emit(t, "genuine 7")
	e.WaitFor(t, 1, "kevent_events_total", "source", "kevent", "event", "genuine")
	mfs := e.Scrape(t)
	if v, ok := e2e.Value(mfs, "kevent_events_total", "source", "kevent", "event", "forged"); ok {
		t.Errorf("forged message counted as an event: %v", v)
	}
	check(t, mfs, 2, "kevent_datagrams_received_total", "source", "kevent")
	t.Logf("forged message rejected (not_kernel), the module's event counted")
}
