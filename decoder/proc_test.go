package decoder_test

import (
	"encoding/binary"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

const (
	procEventFork     = 0x00000001
	procEventExec     = 0x00000002
	procEventCoredump = 0x40000000
	procEventExit     = 0x80000000
	// procEventLen is sizeof(struct proc_event).
	procEventLen = 40
)

// cnMsg builds a connector message (struct cn_msg and data) of id idx,
// val, as the kernel sends it: in an NLMSG_DONE message.
func cnMsg(idx, val uint32, data []byte) []byte {
	c := concat(u32(idx), u32(val), u32(7), u32(0))
	c = binary.NativeEndian.AppendUint16(c, uint16(len(data)))
	c = append(c, 0, 0)
	return nlsend.AppendMessage(nil, unix.NLMSG_DONE, 7, append(c, data...))
}

// procEvent builds a struct proc_event of type what whose event data are
// the words given (for an exit: pid, tgid, exit_code, exit_signal, parent
// pid and tgid).
func procEvent(what uint32, words ...uint32) []byte {
	e := concat(u32(what), u32(1), u64(123456789))
	for _, w := range words {
		e = append(e, u32(w)...)
	}
	return append(e, make([]byte, procEventLen-len(e))...)
}

// procExit is the kernel's message for a task that exited with exit_code.
func procExit(pid, tgid, code uint32) []byte {
	return cnMsg(1, 1, procEvent(procEventExit, pid, tgid, code, 17, 1, 1))
}

func exitEv(name string, pid float64) event {
	return event{Name: name, Value: pid, HasValue: true}
}

func TestProc(t *testing.T) {
	for _, c := range []struct {
		name     string
		datagram []byte
		want     []event
		bad      int
	}{
		{"exit 77", procExit(4242, 4242, 77<<8), []event{exitEv("exit/77", 4242)}, 0},
		{"exit 0", procExit(1, 1, 0), []event{exitEv("exit/0", 1)}, 0},
		{"exit 255", procExit(9, 9, 0xff00), []event{exitEv("exit/255", 9)}, 0},
		{"a thread, not a process", procExit(4243, 4242, 77<<8), nil, 0},
		{"killed", procExit(4242, 4242, 9), []event{exitEv("signal/SIGKILL", 4242)}, 0},
		{"killed, dumping core", procExit(4242, 4242, 0x80|11), []event{exitEv("coredump/SIGSEGV", 4242)}, 0},
		{"a thread killed with its process", procExit(4244, 4242, 9), nil, 0},
		{"real-time signals, named as glibc's kill -l names them", concat(procExit(5, 5, 39), procExit(6, 6, 34), procExit(7, 7, 50), procExit(8, 8, 64), procExit(9, 9, 32)),
			[]event{exitEv("signal/SIGRTMIN+5", 5), exitEv("signal/SIGRTMIN", 6), exitEv("signal/SIGRTMAX-14", 7), exitEv("signal/SIGRTMAX", 8), exitEv("signal/32", 9)}, 0},
		{"a signal Linux does not have", procExit(5, 5, 0x80|100), []event{exitEv("coredump/100", 5)}, 0},
		{"bits above the status are ignored", procExit(5, 5, 0x10000|3<<8), []event{exitEv("exit/3", 5)}, 0},
		{"the core dump's own event, a fork, an exec, an acknowledgement",
			concat(cnMsg(1, 1, procEvent(procEventCoredump, 5, 5, 1, 1)), cnMsg(1, 1, procEvent(procEventFork, 1, 1, 5, 5)),
				cnMsg(1, 1, procEvent(procEventExec, 5, 5)), cnMsg(1, 1, procEvent(0, 0))), nil, 0},
		{"an event of a type to come", cnMsg(1, 1, procEvent(0x400, 5, 5)), nil, 0},
		{"an exit event as short as the kernel's before parent pids", cnMsg(1, 1, procEvent(procEventExit, 5, 5, 2<<8, 17)[:32]),
			[]event{exitEv("exit/2", 5)}, 0},
		{"the last message without padding", withoutPadding(cnMsg(1, 1, procEvent(procEventExit, 5, 5, 0, 17)[:33])),
			[]event{exitEv("exit/0", 5)}, 0},

		{"not NLMSG_DONE", nlsend.AppendMessage(nil, 0x10, 7, procExit(5, 5, 0)[16:]), nil, 1},
		{"short connector header", nlsend.AppendMessage(nil, unix.NLMSG_DONE, 7, make([]byte, 19)), nil, 1},
		{"another connector index", cnMsg(2, 1, procEvent(procEventExit, 5, 5, 0, 17)), nil, 1},
		{"another connector value", cnMsg(1, 2, procEvent(procEventExit, 5, 5, 0, 17)), nil, 1},
		{"data length past the message", func() []byte {
			b := procExit(5, 5, 0)
			binary.NativeEndian.PutUint16(b[16+16:], 41)
			return b
		}(), nil, 1},
		{"data shorter than an event's header", cnMsg(1, 1, make([]byte, 15)), nil, 1},
		{"exit event too short for its exit code", cnMsg(1, 1, procEvent(procEventExit, 5, 5, 0, 17)[:27]), nil, 1},
		{"bad beside good", concat(cnMsg(2, 1, procEvent(procEventExit, 5, 5, 0, 17)), procExit(6, 6, 9)),
			[]event{exitEv("signal/SIGKILL", 6)}, 1},
		{"truncated netlink header", procExit(5, 5, 0)[:12], nil, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, bad := decoder.NewProc().Decode(nil, c.datagram)
			if diff := cmp.Diff(c.want, toEvents(got)); diff != "" {
				t.Errorf("unexpected events (-want +got):\n%s", diff)
			}
			if bad != c.bad {
				t.Errorf("malformed count %d, want %d", bad, c.bad)
			}
		})
	}
}

// procSignalNames are the names the proc decoder should give signals
// 1-127, without the SIG prefix: Linux's for 1-31 as x/sys/unix names
// them for this architecture; glibc's for the real-time signals, whose
// SIGRTMIN is 34 (RTMIN, RTMIN+1 to RTMIN+15, then RTMAX-14 to RTMAX); the
// number for 32 and 33, which glibc keeps for itself, and for 65-127.
func procSignalNames() map[int]string {
	want := make(map[int]string)
	for sig := 1; sig < 128; sig++ {
		want[sig] = strconv.Itoa(sig)
	}
	for sig := 1; sig < 32; sig++ {
		want[sig] = strings.TrimPrefix(unix.SignalName(unix.Signal(sig)), "SIG")
	}
	want[int(unix.SIGIOT)] = "ABRT"
	want[34], want[64] = "RTMIN", "RTMAX"
	for n := 1; n <= 15; n++ {
		want[34+n] = "RTMIN+" + strconv.Itoa(n)
	}
	for n := 1; n <= 14; n++ {
		want[64-n] = "RTMAX-" + strconv.Itoa(n)
	}
	return want
}

// procSignalName decodes the exit of a process killed by sig and returns
// its name without "signal/".
func procSignalName(t *testing.T, sig int) string {
	t.Helper()
	events, bad := decoder.NewProc().Decode(nil, procExit(5, 5, uint32(sig)))
	if len(events) != 1 || bad != 0 {
		t.Fatalf("signal %d: %d events, %d malformed", sig, len(events), bad)
	}
	return strings.TrimPrefix(string(events[0].Name), "signal/")
}

// TestProcSignalNames: every signal's name, with the SIG prefix where it
// is a name.
func TestProcSignalNames(t *testing.T) {
	want := procSignalNames()
	for sig := 1; sig < 128; sig++ {
		w := want[sig]
		if _, err := strconv.Atoi(w); err != nil {
			w = "SIG" + w
		}
		if got := procSignalName(t, sig); got != w {
			t.Errorf("signal %d: named %q, want %q", sig, got, w)
		}
	}
}

// TestProcSignalNamesKill compares the names of signals 1-64 with what
// the kill -l of this machine's bash and procps (or util-linux) print, the
// names users look signals up by. Where a tool prints none (bash for 32
// and 33), the decoder's name is the number.
func TestProcSignalNamesKill(t *testing.T) {
	// Other names tools print for the same signal.
	aliases := map[string]string{"POLL": "IO", "IOT": "ABRT", "CLD": "CHLD"}
	tools := 0
	for _, tool := range []struct {
		name string
		// script prints kill -l N for N in 1-64, one line each, empty
		// where the tool names none.
		args []string
	}{
		{"bash", []string{"-c", `kill -l RTMIN; for i in $(seq 1 64); do echo "$(kill -l $i 2>/dev/null)"; done`}},
		{"kill", nil},
	} {
		path, err := exec.LookPath(tool.name)
		if err != nil {
			t.Logf("%s: not installed", tool.name)
			continue
		}
		var lines []string
		if tool.args != nil {
			out, err := exec.Command(path, tool.args...).Output()
			if err != nil {
				t.Fatalf("%s: %v", tool.name, err)
			}
			lines = strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		} else {
			// One process per signal: procps stops at the first it
			// cannot name.
			lines = []string{""}
			if out, err := exec.Command(path, "-l", "RTMIN").Output(); err == nil {
				lines[0] = strings.TrimSpace(string(out))
			}
			for sig := 1; sig <= 64; sig++ {
				out, _ := exec.Command(path, "-l", strconv.Itoa(sig)).Output()
				lines = append(lines, strings.TrimSpace(string(out)))
			}
		}
		if len(lines) != 65 {
			t.Fatalf("%s: %d lines of output, want 65: %q", tool.name, len(lines), lines)
		}
		tools++
		// Its SIGRTMIN: 34 with glibc, other C libraries keep more.
		rtmin := lines[0]
		if rtmin != "" && rtmin != "34" {
			t.Logf("%s: SIGRTMIN is %s here, not glibc's 34: its real-time signal names are not compared", tool.name, rtmin)
		}
		for sig := 1; sig <= 64; sig++ {
			name := strings.TrimPrefix(lines[sig], "SIG")
			if a, ok := aliases[name]; ok {
				name = a
			}
			got := strings.TrimPrefix(procSignalName(t, sig), "SIG")
			switch {
			case sig >= 32 && rtmin != "34":
			case name == "" && tool.name == "kill":
				// procps 4 names no real-time signal.
			case name == "":
				if got != strconv.Itoa(sig) {
					t.Errorf("signal %d: kill -l of %s names it not, the decoder %q (want the number)", sig, tool.name, got)
				}
			case got != name:
				t.Errorf("signal %d: kill -l of %s names it %s, the decoder %q", sig, tool.name, name, got)
			}
		}
	}
	if tools == 0 {
		t.Skip("neither bash nor kill is installed: TestProcSignalNames checks the convention alone")
	}
}

// TestProcBatch: event names are shared and never rewritten, so events of
// one batch keep theirs.
func TestProcBatch(t *testing.T) {
	d := decoder.NewProc()
	events, _ := d.Decode(nil, procExit(5, 5, 77<<8))
	events, _ = d.Decode(events, procExit(6, 6, 9))
	want := []event{exitEv("exit/77", 5), exitEv("signal/SIGKILL", 6)}
	if diff := cmp.Diff(want, toEvents(events)); diff != "" {
		t.Fatalf("unexpected events (-want +got):\n%s", diff)
	}
}

// TestProcListenRequests: the 4-byte operation every kernel reads, then
// struct proc_input asking for exits, which kernels before 6.6 ignore (they
// read operations of exactly 4 bytes).
func TestProcListenRequests(t *testing.T) {
	msg := func(seq uint32, data []byte) []byte {
		c := concat(u32(1), u32(1), u32(seq), u32(0))
		c = binary.NativeEndian.AppendUint16(c, uint16(len(data)))
		c = append(append(c, 0, 0), data...)
		return nlsend.AppendMessage(nil, unix.NLMSG_DONE, seq, c)
	}
	want := [][]byte{msg(1, u32(1)), msg(2, concat(u32(1), u32(procEventExit)))}
	if got := decoder.ProcListenRequests(); !cmp.Equal(got, want) {
		t.Fatalf("requests %x, want %x", got, want)
	}
	if got := decoder.Requests("proc"); !cmp.Equal(got, want) {
		t.Fatalf("Requests(proc) = %x, want %x", got, want)
	}
	d, err := decoder.New("proc", decoder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*decoder.Proc); !ok {
		t.Fatalf("New(proc) = %T", d)
	}
}

// TestProcUAPI decodes exit events that a C program builds with the
// system's uapi headers (struct cn_msg, struct proc_event, CN_IDX_PROC,
// CN_VAL_PROC, PROC_EVENT_EXIT), for every signal the C library's
// <signal.h> names, and compares the subscription with the headers'
// (PROC_CN_MCAST_LISTEN; struct proc_input where the headers are 6.6's or
// later).
func TestProcUAPI(t *testing.T) {
	lines := cHeaderProgram(t, `
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <linux/netlink.h>
#include <linux/connector.h>
#include <linux/cn_proc.h>

static unsigned char buf[256] __attribute__((aligned(8)));

static void dump(const char *name, const struct nlmsghdr *n) {
	printf("%s ", name);
	for (unsigned i = 0; i < n->nlmsg_len; i++)
		printf("%02x", ((const unsigned char *)n)[i]);
	printf("\n");
}

static struct nlmsghdr *cn(unsigned seq, const void *data, unsigned len) {
	struct nlmsghdr *n = (struct nlmsghdr *)buf;
	struct cn_msg *c = NLMSG_DATA(n);
	memset(buf, 0, sizeof(buf));
	n->nlmsg_len = NLMSG_LENGTH(sizeof(*c) + len);
	n->nlmsg_type = NLMSG_DONE;
	n->nlmsg_seq = seq;
	c->id.idx = CN_IDX_PROC;
	c->id.val = CN_VAL_PROC;
	c->seq = seq;
	c->len = len;
	memcpy(c->data, data, len);
	return n;
}

static void exit_event(const char *name, int pid, int tgid, unsigned code) {
	struct proc_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_EXIT;
	ev.event_data.exit.process_pid = pid;
	ev.event_data.exit.process_tgid = tgid;
	ev.event_data.exit.exit_code = code;
	ev.event_data.exit.exit_signal = SIGCHLD;
	dump(name, cn(0, &ev, sizeof(ev)));
}

#define SIG(s) exit_event("signal_" #s, 100 + s, 100 + s, s)

int main(void) {
	exit_event("exit77", 4242, 4242, 77 << 8);
	exit_event("thread", 4243, 4242, 77 << 8);
	exit_event("coredump", 4244, 4244, 0x80 | SIGSEGV);
	SIG(SIGHUP); SIG(SIGINT); SIG(SIGQUIT); SIG(SIGILL); SIG(SIGTRAP); SIG(SIGABRT);
	SIG(SIGBUS); SIG(SIGFPE); SIG(SIGKILL); SIG(SIGUSR1); SIG(SIGSEGV); SIG(SIGUSR2);
	SIG(SIGPIPE); SIG(SIGALRM); SIG(SIGTERM); SIG(SIGSTKFLT); SIG(SIGCHLD); SIG(SIGCONT);
	SIG(SIGSTOP); SIG(SIGTSTP); SIG(SIGTTIN); SIG(SIGTTOU); SIG(SIGURG); SIG(SIGXCPU);
	SIG(SIGXFSZ); SIG(SIGVTALRM); SIG(SIGPROF); SIG(SIGWINCH); SIG(SIGIO); SIG(SIGPWR);
	SIG(SIGSYS);
	/* The C library's real-time signals, and the kernel's first, which
	   glibc keeps for itself. */
	SIG(SIGRTMIN); SIG(SIGRTMIN+1); SIG(SIGRTMIN+15); SIG(SIGRTMAX-14); SIG(SIGRTMAX-1); SIG(SIGRTMAX);
	exit_event("signal_32", 100 + __SIGRTMIN, 100 + __SIGRTMIN, __SIGRTMIN);

	struct proc_event fork;
	memset(&fork, 0, sizeof(fork));
	fork.what = PROC_EVENT_FORK;
	dump("fork", cn(0, &fork, sizeof(fork)));

	enum proc_cn_mcast_op op = PROC_CN_MCAST_LISTEN;
	dump("listen", cn(1, &op, sizeof(op)));
#ifdef PROC_EVENT_ALL
	struct proc_input in = { .mcast_op = PROC_CN_MCAST_LISTEN, .event_type = PROC_EVENT_EXIT };
	dump("listen_exits", cn(2, &in, sizeof(in)));
#else
	printf("listen_exits -\n");
#endif
	return 0;
}
`)
	m := make(map[string][]byte)
	var oldHeaders bool
	for _, l := range lines {
		if l == "listen_exits -" {
			oldHeaders = true
			continue
		}
		for k, v := range cHeaderDatagrams(t, []string{l}) {
			m[k] = v
		}
	}
	d := decoder.NewProc()
	for name, dg := range m {
		var want []event
		switch {
		case name == "exit77":
			want = []event{exitEv("exit/77", 4242)}
		case name == "coredump":
			want = []event{exitEv("coredump/SIGSEGV", 4244)}
		case strings.HasPrefix(name, "signal_"):
			sig := strings.TrimPrefix(name, "signal_")
			pid := binary.NativeEndian.Uint32(dg[16+20+16:])
			want = []event{exitEv("signal/"+sig, float64(pid))}
		case name == "thread", name == "fork", strings.HasPrefix(name, "listen"):
		default:
			t.Fatalf("unexpected datagram %s", name)
		}
		if strings.HasPrefix(name, "listen") {
			continue
		}
		got, bad := d.Decode(nil, dg)
		if diff := cmp.Diff(want, toEvents(got)); diff != "" || bad != 0 {
			t.Errorf("%s: %d malformed, unexpected events (-want +got):\n%s", name, bad, diff)
		}
	}
	want := 3 + 38 + 3 // exits, signals, fork and the requests
	if oldHeaders {
		want--
	}
	if len(m) != want {
		t.Errorf("%d datagrams from the header program, want %d", len(m), want)
	}
	reqs := decoder.ProcListenRequests()
	if !cmp.Equal(reqs[0], m["listen"]) {
		t.Errorf("listen request %x, headers build %x", reqs[0], m["listen"])
	}
	if oldHeaders {
		t.Logf("%s predates struct proc_input (Linux 6.6): the second request is checked against TestProcListenRequests only", "/usr/include/linux/cn_proc.h")
	} else if !cmp.Equal(reqs[1], m["listen_exits"]) {
		t.Errorf("exit-filter request %x, headers build %x", reqs[1], m["listen_exits"])
	}
}

func FuzzProc(f *testing.F) {
	f.Add(procExit(4242, 4242, 77<<8))
	f.Add(concat(procExit(1, 1, 9), cnMsg(1, 1, procEvent(procEventFork, 1, 1, 2, 2))))
	f.Add(cnMsg(1, 1, make([]byte, 15)))
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := decoder.NewProc().Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		for _, e := range events {
			n := string(e.Name)
			if !strings.HasPrefix(n, "exit/") && !strings.HasPrefix(n, "signal/") && !strings.HasPrefix(n, "coredump/") || !e.HasValue || len(e.Object) != 0 {
				t.Fatalf("event %q (value %v, object %q)", n, e.Value, e.Object)
			}
		}
	})
}

// BenchmarkProcDecode: a process's exit, a thread's, a kill and a core
// dump, one per datagram as the kernel sends them.
func BenchmarkProcDecode(b *testing.B) {
	benchmarkDecode(b, decoder.NewProc(),
		procExit(4242, 4242, 0),
		procExit(4243, 4243, 77<<8),
		concat(procExit(4245, 4244, 9), procExit(4244, 4244, 9)),
		procExit(4246, 4246, 0x80|6),
	)
}
