//go:build vmtest

package vmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// TestMonitorFirstEvent runs `kevent_exporter monitor` as nobody before
// insmod, as a module author would: it says the family is down, then
// prints the first event after insmod and exits on --count=1.
func TestMonitorFirstEvent(t *testing.T) {
	kevent := useModule(t, "kevent")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(*exporterBinary, "monitor", "--family=kevent", "--groups=events", "--decoder=kevent",
		"--count=1", "--timeout=60s", "--output=json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The monitor reports the source down half a second after it starts.
	output := e2e.Lazy(func() string { return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", &stdout, &stderr) })
	e2e.Eventually(t, "a down notice before insmod", func() bool { return strings.Contains(stdout.String(), `"notice":"down"`) }, output)
	kevent.load(t, "heartbeat_ms=0")
	// The first event: emit, every 200 ms, until the monitor is up and
	// prints one.
	var emitted time.Time
	e2e.Eventually(t, "the monitor prints the first event", func() bool {
		if strings.Contains(stdout.String(), `"event":"first"`) {
			return true
		}
		if time.Since(emitted) >= 200*time.Millisecond {
			emit(t, "first 1 hello")
			emitted = time.Now()
		}
		return false
	}, output)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("monitor: %v; stderr:\n%s", err, &stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("monitor still running after its first event; stdout:\n%s", &stdout)
	}
	var ev struct {
		Source, Event, Payload string
		Value                  float64
		Seq, Instance          uint64
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if strings.Contains(line, `"event":`) {
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
		}
	}
	t.Logf("monitor output:\n%s\nsummary: %s", stdout.String(), strings.TrimSpace(stderr.String()))
	if ev.Source != "cmdline" || ev.Event != "first" || ev.Value != 1 || ev.Payload != "hello" || ev.Seq == 0 || ev.Instance == 0 {
		t.Fatalf("first event %+v, want source cmdline, event first, value 1, payload hello, a seq and an instance", ev)
	}
}
