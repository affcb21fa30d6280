package e2e_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// These tests run the monitor command of the built binary; package
// monitor tests its parts in the test's process.

// monitorProc is a running kevent_exporter monitor.
type monitorProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncbuf.Buffer
	exited         chan struct{}
	err            error
}

// startMonitor runs kevent_exporter monitor with args, on config if it is
// not empty. It is killed at the end of the test if still running.
func startMonitor(t *testing.T, config string, args ...string) *monitorProc {
	t.Helper()
	testenv.RequireRoot(t, "the monitor's sources receive in a private network namespace")
	args = append([]string{"monitor"}, args...)
	if config != "" {
		args = append(args, "--config.file="+e2e.WriteConfig(t, config))
	}
	p := &monitorProc{
		cmd:    exec.Command(exporterBinary, args...),
		stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{},
		exited: make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitOutput waits until the monitor has printed s.
func (p *monitorProc) waitOutput(t *testing.T, s string) {
	t.Helper()
	e2e.Eventually(t, fmt.Sprintf("the monitor prints %q", s), func() bool { return strings.Contains(p.stdout.String(), s) },
		e2e.Lazy(func() string { return fmt.Sprintf("output:\n%s\nstderr:\n%s", p.stdout, p.stderr) }))
}

// signal sends sig to the monitor.
func (p *monitorProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// stop stops the monitor with SIGSTOP and waits until each of its threads
// has stopped, so that what is sent before it goes on (SIGCONT) is read
// in one batch.
func (p *monitorProc) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGSTOP)
	e2e.Eventually(t, "the monitor's threads stop", func() bool {
		stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.cmd.Process.Pid))
		for _, f := range stats {
			// The state follows the command, in parentheses.
			b, err := os.ReadFile(f)
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
				return false
			}
		}
		return len(stats) > 0
	})
}

// wait waits for the monitor to exit and returns its exit status.
func (p *monitorProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(e2e.Timeout):
		p.cmd.Process.Kill()
		<-p.exited
		t.Fatalf("monitor still running after %v; output:\n%s\nstderr:\n%s", e2e.Timeout, p.stdout, p.stderr)
	}
	var exit *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exit):
		return exit.ExitCode()
	default:
		t.Fatal(p.err)
		return -1
	}
}

// lines returns the output's lines with their times checked and cut off:
// the text format's leading RFC 3339 time, or the JSON time field, which
// becomes "T". Lines for which keep is false are left out.
func (p *monitorProc) lines(t *testing.T, keep func(string) bool) []string {
	t.Helper()
	jsonTime := regexp.MustCompile(`^\{"time":"([^"]*)"`)
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(p.stdout.String(), "\n"), "\n") {
		var ts string
		switch {
		case strings.HasPrefix(l, "  "):
			// A decode error's detail.
			out = append(out, l)
			continue
		case strings.HasPrefix(l, "{"):
			m := jsonTime.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("JSON line without a leading time: %s", l)
				continue
			}
			ts, l = m[1], `{"time":"T"`+l[len(m[0]):]
			if !json.Valid([]byte(l)) {
				t.Errorf("not JSON: %s", l)
			}
		default:
			ts, l, _ = strings.Cut(l, " ")
		}
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("line with a bad time: %v", err)
		}
		if keep(l) {
			out = append(out, l)
		}
	}
	return out
}

// notUp leaves out the lines that say a source attached: their receive
// buffer size is the kernel's.
func notUp(l string) bool {
	return !strings.Contains(l, " !up ") && !strings.Contains(l, `"notice":"up"`)
}

// summaryLine returns the summary line of source in the monitor's stderr.
func (p *monitorProc) summaryLine(t *testing.T, source string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^summary source=` + source + ` .*$`).FindString(p.stderr.String())
	if m == "" {
		t.Fatalf("no summary line for source %s; stderr:\n%s", source, p.stderr)
	}
	return m
}

func mustSend(t *testing.T, s *nlsend.Sender, b []byte) {
	t.Helper()
	if err := s.Send(b); err != nil {
		t.Fatal(err)
	}
}

const monitorOutputConfig = `
sources:
  - {name: users, protocol: usersock, groups: [%d], decoder: raw, event_names: {16: tick, 19: "!bang", 20: "two words"}}
  - {name: kev, protocol: usersock, groups: [%d], decoder: kevent}
`

// TestMonitorOutput runs a text and a JSON monitor on the same sources,
// sends them raw and kevent messages from root (the default senders of
// usersock) and checks every line, then stops them with SIGINT and SIGTERM
// and checks their summaries.
func TestMonitorOutput(t *testing.T) {
	t.Parallel()
	gRaw, gKev := testenv.UsersockGroup(t), testenv.UsersockGroup(t)
	config := fmt.Sprintf(monitorOutputConfig, gRaw, gKev)
	text := startMonitor(t, config)
	js := startMonitor(t, config, "--output=json")
	for _, s := range []string{"users", "kev"} {
		text.waitOutput(t, " "+s+" !up protocol=2 groups=")
		js.waitOutput(t, `"source":"`+s+`","notice":"up","protocol":2,"groups":[`)
	}

	raw := sender(t, gRaw)
	errno := binary.NativeEndian.AppendUint32(nil, uint32(0xfffffffe)) // -ENOENT
	for _, b := range [][]byte{
		nlsend.AppendMessage(nil, 16, 1, []byte("42\x00")),
		nlsend.AppendMessage(nil, 17, 2, []byte("say \"hi\"\nbye\xff\x00")),
		// Two messages in one datagram.
		nlsend.AppendMessage(nlsend.AppendMessage(nil, unix.NLMSG_DONE, 0, []byte("Hello from kernel")), 16, 3, []byte(" -1.5e3 ")),
		nlsend.AppendMessage(nil, 18, 4, []byte("héllo ✓\tend")),
		nlsend.AppendMessage(nil, unix.NLMSG_ERROR, 5, append(errno, make([]byte, 16)...)),
		nlsend.AppendMessage(nil, 19, 6, nil),
		nlsend.AppendMessage(nil, 20, 7, []byte("x=y")),
	} {
		mustSend(t, raw, b)
	}
	text.waitOutput(t, `users "two words"`)
	js.waitOutput(t, `"event":"two words"`)

	// Sequence numbers: a gap, a late message, a copy, a new instance.
	kev := sender(t, gKev)
	for _, e := range []nlsend.KeventEvent{
		{Seq: 1, Instance: 7, Name: "tick", Value: 5, Payload: "a"},
		{Seq: 2, Instance: 7, Name: "tock", Value: -3, Object: "eth0"},
		{Seq: 5, Instance: 7, Name: "tick", Value: 6, Payload: "b", Object: "my dev"},
		{Seq: 4, Instance: 7, Name: "late", Value: 0},
		{Seq: 4, Instance: 7, Name: "again", Value: 0},
		{Seq: 1, Instance: 9, Name: "tick", Value: 1},
	} {
		mustSend(t, kev, nlsend.AppendKevent(nil, e))
	}
	text.waitOutput(t, "seq=1 instance=9\n")
	js.waitOutput(t, `"seq":1,"instance":9}`)

	wantText := []string{
		`users tick value=42 payload="42"`,
		`users 17 payload="say \"hi\"\nbye\xff"`,
		`users done payload="Hello from kernel"`,
		`users tick value=-1500 payload=" -1.5e3 "`,
		`users 18 payload="héllo ✓\tend"`,
		`users error value=-2 payload=""`,
		`users "!bang" payload=""`,
		`users "two words" payload="x=y"`,
		`kev tick value=5 payload="a" seq=1 instance=7`,
		`kev tock object=eth0 value=-3 payload="" seq=2 instance=7`,
		`kev !gap instance=7 missing=2 last_seq=2 seq=5`,
		`kev tick object="my dev" value=6 payload="b" seq=5 instance=7`,
		`kev !out_of_order instance=7 seq=4 highest_seq=5`,
		`kev late value=0 payload="" seq=4 instance=7`,
		`kev !duplicate instance=7 seq=4 highest_seq=5`,
		`kev again value=0 payload="" seq=4 instance=7`,
		`kev !reset instance=9 seq=1 previous_instance=7 previous_seq=5`,
		`kev tick value=1 payload="" seq=1 instance=9`,
	}
	t.Logf("text output:\n%s\nJSON output:\n%s", text.stdout, js.stdout)
	if diff := cmp.Diff(wantText, text.lines(t, notUp)); diff != "" {
		t.Errorf("text output (-want +got):\n%s", diff)
	}
	const j = `{"time":"T","source":`
	wantJSON := []string{
		j + `"users","event":"tick","object":"","value":42,"payload":"42"}`,
		j + `"users","event":"17","object":"","payload":"say \"hi\"\nbye\ufffd","payload_base64":"` +
			base64.StdEncoding.EncodeToString([]byte("say \"hi\"\nbye\xff")) + `"}`,
		j + `"users","event":"done","object":"","payload":"Hello from kernel"}`,
		j + `"users","event":"tick","object":"","value":-1500,"payload":" -1.5e3 "}`,
		j + `"users","event":"18","object":"","payload":"héllo ✓\tend"}`,
		j + `"users","event":"error","object":"","value":-2,"payload":""}`,
		j + `"users","event":"!bang","object":"","payload":""}`,
		j + `"users","event":"two words","object":"","payload":"x=y"}`,
		j + `"kev","event":"tick","object":"","value":5,"payload":"a","seq":1,"instance":7}`,
		j + `"kev","event":"tock","object":"eth0","value":-3,"payload":"","seq":2,"instance":7}`,
		j + `"kev","notice":"gap","instance":7,"missing":2,"last_seq":2,"seq":5}`,
		j + `"kev","event":"tick","object":"my dev","value":6,"payload":"b","seq":5,"instance":7}`,
		j + `"kev","notice":"out_of_order","instance":7,"seq":4,"highest_seq":5}`,
		j + `"kev","event":"late","object":"","value":0,"payload":"","seq":4,"instance":7}`,
		j + `"kev","notice":"duplicate","instance":7,"seq":4,"highest_seq":5}`,
		j + `"kev","event":"again","object":"","value":0,"payload":"","seq":4,"instance":7}`,
		j + `"kev","notice":"reset","instance":9,"seq":1,"previous_instance":7,"previous_seq":5}`,
		j + `"kev","event":"tick","object":"","value":1,"payload":"","seq":1,"instance":9}`,
	}
	if diff := cmp.Diff(wantJSON, js.lines(t, notUp)); diff != "" {
		t.Errorf("JSON output (-want +got):\n%s", diff)
	}

	// payload_base64 carries the bytes that payload cannot.
	for _, l := range strings.Split(js.stdout.String(), "\n") {
		var ev struct {
			Payload       string  `json:"payload"`
			PayloadBase64 *string `json:"payload_base64"`
		}
		if !strings.Contains(l, "payload_base64") || json.Unmarshal([]byte(l), &ev) != nil {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(*ev.PayloadBase64); err != nil || string(b) != "say \"hi\"\nbye\xff" {
			t.Errorf("payload_base64 decodes to %q (%v)", b, err)
		}
	}

	text.signal(t, os.Interrupt)
	js.signal(t, syscall.SIGTERM)
	for _, p := range []*monitorProc{text, js} {
		if code := p.wait(t); code != 0 {
			t.Errorf("exit status %d after a signal, want 0; stderr:\n%s", code, p.stderr)
		}
		for _, want := range []string{
			"summary source=users events=8 lost=0 overruns=0 decode_errors=0 rejected=0 attached=true",
			"summary source=kev events=6 lost=0 overruns=0 decode_errors=0 rejected=0 attached=true",
		} {
			if got := p.summaryLine(t, strings.Fields(want)[1][len("source="):]); got != want {
				t.Errorf("summary:\n got %s\nwant %s", got, want)
			}
		}
	}
}

// TestMonitorUevent: a uevent of the namespace's lo shows as net/change
// with its devpath, from the embedded default configuration's uevent
// source. It does not run in parallel: the uevent would reach the
// exporters of other tests, which count lo's uevents exactly.
func TestMonitorUevent(t *testing.T) {
	p := startMonitor(t, "", "--source=uevent", "--count=1", "--timeout=20s")
	p.waitOutput(t, " uevent !up protocol=15 groups=1 ")
	if err := testenv.WriteUevent("lo", "change"); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d after --count 1, want 0; stderr:\n%s", code, p.stderr)
	}
	got := p.lines(t, notUp)
	if len(got) != 1 || !regexp.MustCompile(`^uevent net/change object=lo value=\d+ payload="/devices/virtual/net/lo"$`).MatchString(got[0]) {
		t.Errorf("output %q, want one net/change event of lo", got)
	}
}

// TestMonitorDecodeErrors: a malformed message prints its reason and a hex
// dump of its datagram, bounded to 256 bytes, where its datagram was among
// the events of its batch: after the earlier datagrams' events, before its
// own.
func TestMonitorDecodeErrors(t *testing.T) {
	t.Parallel()
	g := testenv.UsersockGroup(t)
	config := fmt.Sprintf("sources:\n  - {name: bad, protocol: usersock, groups: [%d], decoder: kevent}\n", g)
	text := startMonitor(t, config)
	js := startMonitor(t, config, "--output=json")
	text.waitOutput(t, " bad !up ")
	js.waitOutput(t, `"notice":"up"`)

	snd := sender(t, g)
	// A good event and a message of another type.
	first := nlsend.AppendMessage(nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: 1, Instance: 3, Name: "ok", Value: 1}), 0x11, 0, []byte("oops"))
	good := len(first) - 20
	mustSend(t, snd, first)
	text.waitOutput(t, " bad ok ")
	js.waitOutput(t, `"event":"ok"`)
	// 300 bytes of garbage.
	long := nlsend.AppendMessage(nil, 0x11, 0, bytes.Repeat([]byte{0xab}, 284))
	mustSend(t, snd, long)
	text.waitOutput(t, "(the first 256 of 300 bytes)\n")
	js.waitOutput(t, `"bytes":300`)
	// A good datagram and a bad one, read in one batch.
	text.stop(t)
	js.stop(t)
	second := nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: 2, Instance: 3, Name: "ok", Value: 2})
	third := nlsend.AppendMessage(nil, 0x12, 0, []byte("late"))
	mustSend(t, snd, second)
	mustSend(t, snd, third)
	for _, p := range []*monitorProc{text, js} {
		p.signal(t, syscall.SIGCONT)
	}
	text.waitOutput(t, "message type 0x12")
	js.waitOutput(t, "message type 0x12")

	dump := func(b []byte) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSuffix(hex.Dump(b), "\n"), "\n") {
			out = append(out, "  "+l)
		}
		return out
	}
	var want []string
	want = append(want, fmt.Sprintf("bad !decode_error bytes=%d malformed=1", len(first)))
	want = append(want, fmt.Sprintf("  at byte %d: message type 0x11 is not KEVENT_MSG_EVENT (0x10)", good))
	want = append(want, dump(first)...)
	want = append(want, `bad ok value=1 payload="" seq=1 instance=3`)
	want = append(want, "bad !decode_error bytes=300 malformed=1")
	want = append(want, "  at byte 0: message type 0x11 is not KEVENT_MSG_EVENT (0x10)")
	want = append(want, dump(long[:256])...)
	want = append(want, "  (the first 256 of 300 bytes)")
	want = append(want, `bad ok value=2 payload="" seq=2 instance=3`)
	want = append(want, fmt.Sprintf("bad !decode_error bytes=%d malformed=1", len(third)))
	want = append(want, "  at byte 0: message type 0x12 is not KEVENT_MSG_EVENT (0x10)")
	want = append(want, dump(third)...)
	t.Logf("text output:\n%s\nJSON output:\n%s", text.stdout, js.stdout)
	if diff := cmp.Diff(want, text.lines(t, notUp)); diff != "" {
		t.Errorf("text output (-want +got):\n%s", diff)
	}

	const j = `{"time":"T","source":"bad",`
	wantJSON := []string{
		j + fmt.Sprintf(`"notice":"decode_error","bytes":%d,"malformed":1,"problems":[{"offset":%d,"reason":"message type 0x11 is not KEVENT_MSG_EVENT (0x10)"}],"hex":"%x"}`,
			len(first), good, first),
		j + `"event":"ok","object":"","value":1,"payload":"","seq":1,"instance":3}`,
		j + fmt.Sprintf(`"notice":"decode_error","bytes":300,"malformed":1,"problems":[{"offset":0,"reason":"message type 0x11 is not KEVENT_MSG_EVENT (0x10)"}],"hex":"%x"}`,
			long[:256]),
		j + `"event":"ok","object":"","value":2,"payload":"","seq":2,"instance":3}`,
		j + fmt.Sprintf(`"notice":"decode_error","bytes":%d,"malformed":1,"problems":[{"offset":0,"reason":"message type 0x12 is not KEVENT_MSG_EVENT (0x10)"}],"hex":"%x"}`,
			len(third), third),
	}
	if diff := cmp.Diff(wantJSON, js.lines(t, notUp)); diff != "" {
		t.Errorf("JSON output (-want +got):\n%s", diff)
	}

	text.signal(t, os.Interrupt)
	if code := text.wait(t); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if got, want := text.summaryLine(t, "bad"), "summary source=bad events=2 lost=0 overruns=0 decode_errors=3 rejected=0 attached=true"; got != want {
		t.Errorf("summary:\n got %s\nwant %s", got, want)
	}
}

// TestMonitorExitStatus: --count reached is 0, --timeout before --count is
// 1, no source attached or bad flags 2.
func TestMonitorExitStatus(t *testing.T) {
	t.Parallel()
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 29); err == nil {
		unix.Close(fd)
		t.Fatal("netlink protocol 29 is registered on this host; this test needs it unregistered")
	}
	g := testenv.UsersockGroup(t)
	cmdline := []string{"--protocol=usersock", fmt.Sprintf("--groups=%d", g), "--decoder=raw"}
	snd := sender(t, g)
	send := func(n int) {
		for i := 0; i < n; i++ {
			mustSend(t, snd, nlsend.AppendMessage(nil, 16, uint32(i), []byte(strconv.Itoa(i))))
		}
	}

	t.Run("count reached", func(t *testing.T) {
		p := startMonitor(t, "", append(cmdline, "--count=3", "--timeout=20s")...)
		p.waitOutput(t, " cmdline !up ")
		send(5)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit status %d, want 0; stderr:\n%s", code, p.stderr)
		}
		want := []string{`cmdline 16 value=0 payload="0"`, `cmdline 16 value=1 payload="1"`, `cmdline 16 value=2 payload="2"`}
		if diff := cmp.Diff(want, p.lines(t, notUp)); diff != "" {
			t.Errorf("output (-want +got):\n%s", diff)
		}
	})
	t.Run("timeout before count", func(t *testing.T) {
		p := startMonitor(t, "", append(cmdline, "--count=5", "--timeout=2s")...)
		p.waitOutput(t, " cmdline !up ")
		send(2)
		if code := p.wait(t); code != 1 {
			t.Fatalf("exit status %d, want 1; stderr:\n%s", code, p.stderr)
		}
		if want := "--timeout 2s passed after 2 of --count 5 events"; !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, p.stderr)
		}
	})
	t.Run("timeout without count", func(t *testing.T) {
		p := startMonitor(t, "", append(cmdline, "--timeout=1s")...)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit status %d, want 0; stderr:\n%s", code, p.stderr)
		}
	})
	t.Run("no source opened", func(t *testing.T) {
		p := startMonitor(t, "", "--protocol=29", "--groups=2", "--decoder=raw", "--timeout=1s")
		if code := p.wait(t); code != 2 {
			t.Fatalf("exit status %d, want 2; stderr:\n%s", code, p.stderr)
		}
		for _, want := range []string{
			"summary source=cmdline events=0 lost=0 overruns=0 decode_errors=0 rejected=0 attached=false\n",
			"no source could be opened",
			"Netlink protocol not registered",
		} {
			if !strings.Contains(p.stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, p.stderr)
			}
		}
		if want := []string{"cmdline !down protocol=29 groups=2"}; !cmp.Equal(want, p.lines(t, notUp)) {
			t.Errorf("output %q, want %q", p.lines(t, notUp), want)
		}
	})
	// However short the timeout, the run shows whether the sources open.
	t.Run("timeout before opening", func(t *testing.T) {
		p := startMonitor(t, "", append(cmdline, "--timeout=1ns")...)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit status %d, want 0; stderr:\n%s", code, p.stderr)
		}
		if !strings.Contains(p.stdout.String(), fmt.Sprintf(" cmdline !up protocol=2 groups=%d ", g)) {
			t.Errorf("output lacks the source's up line:\n%s", p.stdout)
		}
	})
	t.Run("timeout before failing to open", func(t *testing.T) {
		p := startMonitor(t, "", "--protocol=29", "--groups=2", "--decoder=raw", "--timeout=1ns")
		if code := p.wait(t); code != 2 {
			t.Fatalf("exit status %d, want 2; stderr:\n%s", code, p.stderr)
		}
		for _, want := range []string{"no source could be opened", "Netlink protocol not registered"} {
			if !strings.Contains(p.stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, p.stderr)
			}
		}
		if want := []string{"cmdline !down protocol=29 groups=2"}; !cmp.Equal(want, p.lines(t, notUp)) {
			t.Errorf("output %q, want %q", p.lines(t, notUp), want)
		}
	})
	// Protocol route's groups by name, as in the configuration.
	t.Run("route group names", func(t *testing.T) {
		p := startMonitor(t, "", "--protocol=route", "--groups=link,neigh", "--decoder=rtnetlink", "--timeout=1ns")
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit status %d, want 0; stderr:\n%s", code, p.stderr)
		}
		if !strings.Contains(p.stdout.String(), " cmdline !up protocol=0 groups=1,3 groups_joined=2 ") {
			t.Errorf("output lacks the source's up line:\n%s", p.stdout)
		}
	})
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"groups without protocol", []string{"--groups=2"}, "give --protocol or --family too"},
		{"protocol and family", []string{"--protocol=2", "--family=nlctrl", "--groups=2", "--decoder=raw"}, "--protocol and --family both name the command-line source's netlink: give one"},
		{"family without decoder", []string{"--family=nlctrl", "--groups=notify"}, "--family needs --groups and --decoder"},
		{"protocol with config", []string{"--protocol=2", "--groups=2", "--decoder=raw", "--config.file=/dev/null"}, "cannot be combined"},
		{"protocol without decoder", []string{"--protocol=2", "--groups=2"}, "--protocol needs --groups and --decoder"},
		{"bad group", []string{"--protocol=2", "--groups=2,x", "--decoder=raw"}, `command-line source: groups: "x" is not an integer`},
		{"empty group", []string{"--protocol=2", "--groups=2,", "--decoder=raw"}, `--groups: an empty group in "2,"`},
		{"unknown route group", []string{"--protocol=route", "--groups=link,nope", "--decoder=rtnetlink"}, `command-line source: groups: unknown group "nope" for protocol route`},
		{"group out of range", []string{"--protocol=usersock", "--groups=33", "--decoder=raw"}, "group 33 out of range 1-32"},
		{"unknown protocol", []string{"--protocol=nope", "--groups=1", "--decoder=raw"}, `command-line source: unknown protocol "nope"`},
		{"unknown source", []string{"--source=nope"}, `no source named "nope" in the configuration (it has `},
		{"unknown output", []string{"--output=xml"}, "enum value must be one of text,json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startMonitor(t, "", c.args...)
			if code := p.wait(t); code != 2 || !strings.Contains(p.stderr.String(), c.want) {
				t.Errorf("exit status %d, stderr %q; want 2 and %q", code, p.stderr, c.want)
			}
		})
	}
}

// TestMonitorFamily: generic netlink sources say which family and groups
// they follow, and a family that no module registered is down; --family
// describes one on the command line.
func TestMonitorFamily(t *testing.T) {
	t.Parallel()
	cmdline := startMonitor(t, "", "--family=nlctrl", "--groups=notify", "--decoder=genl", "--timeout=1500ms")
	if code := cmdline.wait(t); code != 0 {
		t.Errorf("--family: exit status %d, want 0; stderr:\n%s", code, cmdline.stderr)
	}
	if re := regexp.MustCompile(`(?m)^\S+ cmdline !up family=nlctrl groups=notify groups_joined=1 `); !re.MatchString(cmdline.stdout.String()) {
		t.Errorf("--family: output lacks the source's up line:\n%s", cmdline.stdout)
	}
	text := startMonitor(t, `
sources:
  - {name: fam, family: nlctrl, groups: [notify], decoder: genl}
  - {name: missing, family: kevent_nosuch, groups: [events], decoder: kevent}
`, "--timeout=1500ms")
	js := startMonitor(t, "sources:\n  - {name: fam, family: nlctrl, groups: [notify], decoder: genl}\n", "--timeout=1500ms", "--output=json")
	for _, p := range []*monitorProc{text, js} {
		if code := p.wait(t); code != 0 {
			t.Errorf("exit status %d, want 0; stderr:\n%s", code, p.stderr)
		}
	}
	up := regexp.MustCompile(`(?m)^\S+ fam !up family=nlctrl groups=notify groups_joined=1 receive_buffer_bytes=\d+$`)
	down := regexp.MustCompile(`(?m)^\S+ missing !down family=kevent_nosuch groups=events$`)
	if !up.MatchString(text.stdout.String()) || !down.MatchString(text.stdout.String()) {
		t.Errorf("text output lacks the family source's up and the missing family's down:\n%s", text.stdout)
	}
	if want := `"source":"fam","notice":"up","family":"nlctrl","groups":["notify"],"groups_joined":1,`; !strings.Contains(js.stdout.String(), want) {
		t.Errorf("JSON output lacks %s:\n%s", want, js.stdout)
	}
	for _, want := range []string{"summary source=fam events=", "summary source=missing events=0 lost=0 overruns=0 decode_errors=0 rejected=0 attached=false\n"} {
		if !strings.Contains(text.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, text.stderr)
		}
	}
}

// TestMonitorFlood: a flood into a small receive buffer while the monitor
// is stopped (SIGSTOP). The loss it prints and the events it prints add up
// to what was sent, one message per datagram.
func TestMonitorFlood(t *testing.T) {
	t.Parallel()
	const sent = 100000
	g := testenv.UsersockGroup(t)
	p := startMonitor(t, fmt.Sprintf("sources:\n  - {name: fl, protocol: usersock, groups: [%d], decoder: raw, receive_buffer_bytes: 65536}\n", g))
	p.waitOutput(t, " fl !up ")
	p.signal(t, syscall.SIGSTOP)
	flood(t, g, sent)
	p.signal(t, syscall.SIGCONT)
	p.signal(t, os.Interrupt)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", code, p.stderr)
	}
	lostLine := regexp.MustCompile(`^fl !lost lost=(\d+) lost_total=(\d+) overruns_total=(\d+)$`)
	var events, lost, lostTotal int
	for _, l := range p.lines(t, notUp) {
		if l == `fl 32 payload="flood"` {
			events++
			continue
		}
		m := lostLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("unexpected line %q", l)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		lost += n
		lostTotal, _ = strconv.Atoi(m[2])
	}
	t.Logf("%d events and %d lost printed", events, lost)
	if events+lost != sent || lost != lostTotal {
		t.Errorf("printed events + lost = %d + %d = %d, want %d (last lost_total %d)", events, lost, events+lost, sent, lostTotal)
	}
	if lost == 0 {
		t.Error("nothing lost: the flood did not overflow the socket, so the test proves little")
	}
	want := fmt.Sprintf("summary source=fl events=%d lost=%d ", events, lost)
	if got := p.summaryLine(t, "fl"); !strings.HasPrefix(got, want) {
		t.Errorf("summary %q, want it to start with %q", got, want)
	}
}

// TestMonitorSecondSignal: a monitor whose stdout nobody reads cannot stop
// cleanly, since what it has to print waits for the reader; a second
// SIGINT ends it at once.
func TestMonitorSecondSignal(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "usersock multicast in a private network namespace")
	g := testenv.UsersockGroup(t)
	cmd := exec.Command(exporterBinary, "monitor", "--protocol=usersock", fmt.Sprintf("--groups=%d", g), "--decoder=raw")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	fd := int(stdout.(*os.File).Fd())
	queued := func() int {
		n, _ := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
		return n
	}
	e2e.Eventually(t, "the monitor prints that its source is up", func() bool { return queued() > 0 })
	flood(t, g, 5000)
	// The pipe holds at most 64 KiB: the monitor waits to write the rest.
	last := 0
	e2e.Eventually(t, "the pipe is full", func() bool {
		n := queued()
		full := n >= 32<<10 && n == last
		last = n
		return full
	})
	// Signals of a kind do not queue: the second is sent once the first
	// has been taken.
	cmd.Process.Signal(os.Interrupt)
	e2e.Eventually(t, "the monitor takes the first SIGINT", func() bool { return strings.Contains(stderr.String(), `msg="Stopping:`) })
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 130 {
			t.Errorf("exit: %v, want status 130", err)
		}
	case <-time.After(e2e.Timeout):
		t.Fatalf("monitor still running %v after a second SIGINT; stderr:\n%s", e2e.Timeout, &stderr)
	}
	if want := "interrupt again: exiting without waiting for the sources to stop"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, &stderr)
	}
}
