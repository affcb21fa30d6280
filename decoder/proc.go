package decoder

import (
	"encoding/binary"
	"strconv"
)

// The process events connector's wire format, from linux/connector.h and
// linux/cn_proc.h. A test checks these against the headers.
const (
	// cnIdxProc and cnValProc are the connector id of process events;
	// cnIdxProc is also their multicast group.
	cnIdxProc = 1
	cnValProc = 1
	// cnMsgLen is the size of struct cn_msg: id (idx, val), seq, ack,
	// len, flags.
	cnMsgLen = 20

	procCnMcastListen = 1
	procEventExit     = 0x80000000

	// procEventHeaderLen is where struct proc_event's event_data starts:
	// after what, cpu and the 8-byte aligned timestamp_ns.
	procEventHeaderLen = 16
	// procExitLen is the part of struct exit_proc_event the decoder
	// reads: process_pid, process_tgid, exit_code, exit_signal.
	procExitLen = 16
)

// Signal and exit names, made once: decoding picks from them.
var (
	procExitNames     = procNames("exit/", 256, strconv.Itoa)
	procSignalNames   = procNames("signal/", 128, signalName)
	procCoredumpNames = procNames("coredump/", 128, signalName)
)

func procNames(prefix string, n int, name func(int) string) [][]byte {
	names := make([][]byte, n)
	for i := range names {
		names[i] = []byte(prefix + name(i))
	}
	return names
}

// linuxSignals are Linux's signal names on x86 and arm64, which number them
// alike (asm-generic).
var linuxSignals = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
	6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
	11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
	21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR",
	31: "SIGSYS",
}

const (
	// sigRTMin and sigRTMax are the real-time signals as programs see
	// them with glibc, and as bash's and procps's kill -l name them: the
	// kernel's first two (32 and 33) are glibc's own, for thread
	// cancellation and set*id, so its SIGRTMIN is 34.
	sigRTMin = 34
	sigRTMax = 64
)

// signalName returns the name of Linux signal sig as glibc's kill -l
// prints it, with the SIG prefix: "SIGKILL"; "SIGRTMIN", "SIGRTMIN+1" to
// "SIGRTMIN+15" for 34-49, "SIGRTMAX-14" to "SIGRTMAX" for 50-64. Signals
// 32 and 33, which glibc keeps from programs and kill -l does not name,
// and those Linux does not have are their numbers.
func signalName(sig int) string {
	switch {
	case sig > 0 && sig < len(linuxSignals):
		return linuxSignals[sig]
	case sig < sigRTMin || sig > sigRTMax:
		return strconv.Itoa(sig)
	case sig == sigRTMin:
		return "SIGRTMIN"
	case sig == sigRTMax:
		return "SIGRTMAX"
	case sig-sigRTMin <= (sigRTMax-sigRTMin)/2:
		return "SIGRTMIN+" + strconv.Itoa(sig-sigRTMin)
	}
	return "SIGRTMAX-" + strconv.Itoa(sigRTMax-sig)
}

// Proc decodes the process events connector (protocol connector, group
// CN_IDX_PROC): one event per process that ends, when its thread group
// leader exits (pid == tgid; the other threads' exits are not processes'),
// named by how it ended, as wait(2) would tell its parent:
//
//   - exit/<status> for a normal exit, e.g. exit/0 or exit/77;
//   - signal/<NAME> for a process killed by a signal, e.g. signal/SIGKILL
//     (the OOM killer's) or signal/SIGRTMIN+5 (39), named as kill -l
//     names it with glibc (see signalName);
//   - coredump/<NAME> for one killed by a signal that dumped core.
//
// The kernel's exit_code is that of wait(2): the signal in its low 7 bits,
// 0x80 if a core was dumped, the exit status in the next byte. A core
// dump's own event (PROC_EVENT_COREDUMP) comes before the exit and is not
// counted: the exit says whether a core was written. The value is the
// process's pid (tgid); there is no object, since the event has pids only
// and reading the command from /proc would race the process's reaping.
// Other process events (fork, exec, id changes, the kernel's
// acknowledgements of subscriptions) give no events.
//
// Two corner cases of thread groups: a leader that exits while the other
// threads run on (pthread_exit in main) counts when it exits, with its
// status; and a multi-threaded process that calls execve from another
// thread counts as exit/0, since the kernel ends its old leader.
type Proc struct {
	faults
}

// NewProc returns a proc decoder.
func NewProc() *Proc {
	return &Proc{}
}

// ProcListenRequests returns the messages a proc source sends the kernel
// when its socket opens: PROC_CN_MCAST_LISTEN, as every kernel reads it (a
// 4-byte operation), then the same operation in a struct proc_input that
// asks for exit events only. Kernels before 6.6 read operations of exactly
// 4 bytes and ignore the second message; 6.6 and later read both, and the
// second makes them filter out the forks, execs and others, which are most
// of the traffic.
func ProcListenRequests() [][]byte {
	listen := binary.NativeEndian.AppendUint32(nil, procCnMcastListen)
	return [][]byte{
		procRequest(1, listen),
		procRequest(2, binary.NativeEndian.AppendUint32(listen, procEventExit)),
	}
}

// procRequest returns a connector message to the process events callback.
func procRequest(seq uint32, data []byte) []byte {
	b := make([]byte, nlmsgHeaderLen+cnMsgLen, nlmsgHeaderLen+cnMsgLen+len(data))
	binary.NativeEndian.PutUint32(b[0:4], uint32(cap(b)))
	binary.NativeEndian.PutUint16(b[4:6], nlmsgDone)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	c := b[nlmsgHeaderLen:]
	binary.NativeEndian.PutUint32(c[0:4], cnIdxProc)
	binary.NativeEndian.PutUint32(c[4:8], cnValProc)
	binary.NativeEndian.PutUint32(c[8:12], seq)
	binary.NativeEndian.PutUint16(c[16:18], uint16(len(data)))
	return append(b, data...)
}

// Decode implements Decoder. The connector sends one message per datagram,
// of type NLMSG_DONE.
func (d *Proc) Decode(events []Event, datagram []byte) ([]Event, int) {
	return appendMessages(events, datagram, d)
}

func (d *Proc) diagnose(datagram []byte) []Problem {
	return diagnoseMessages(datagram, NewProc())
}

func (d *Proc) appendMessage(events []Event, m message) ([]Event, bool) {
	var ev Event
	ok, good := d.decode(&ev, m)
	if ok && good {
		events = append(events, ev)
	}
	return events, good
}

// decode decodes one message into ev; ok says whether it is an event, good
// whether it was well-formed.
func (d *Proc) decode(ev *Event, m message) (ok, good bool) {
	p := m.Payload
	switch {
	case m.Type != nlmsgDone:
		return false, d.fail(m, faultf("message type %#x is not the connector's NLMSG_DONE (%#x)", int(m.Type), nlmsgDone))
	case len(p) < cnMsgLen:
		return false, d.fail(m, faultf("payload of %d bytes, too short for struct cn_msg (%d bytes)", len(p), cnMsgLen))
	}
	if idx, val := binary.NativeEndian.Uint32(p[0:4]), binary.NativeEndian.Uint32(p[4:8]); idx != cnIdxProc || val != cnValProc {
		return false, d.fail(m, faultf("connector id %d:%d is not process events' (CN_IDX_PROC:CN_VAL_PROC, %d:%d)", int(idx), int(val), cnIdxProc, cnValProc))
	}
	n := int(binary.NativeEndian.Uint16(p[16:18]))
	switch {
	case n > len(p)-cnMsgLen:
		return false, d.fail(m, faultf("cn_msg length %d runs past the message (%d bytes after struct cn_msg)", n, len(p)-cnMsgLen))
	case n < procEventHeaderLen:
		return false, d.fail(m, faultf("cn_msg length %d is shorter than struct proc_event's header (%d bytes)", n, procEventHeaderLen))
	}
	e := p[cnMsgLen : cnMsgLen+n]
	if binary.NativeEndian.Uint32(e[0:4]) != procEventExit {
		return false, true
	}
	if len(e) < procEventHeaderLen+procExitLen {
		return false, d.fail(m, faultf("exit event of %d bytes, too short for its struct exit_proc_event (%d bytes)", len(e), procEventHeaderLen+procExitLen))
	}
	x := e[procEventHeaderLen:]
	pid, tgid := binary.NativeEndian.Uint32(x[0:4]), binary.NativeEndian.Uint32(x[4:8])
	if pid != tgid {
		// A thread, not a process.
		return false, true
	}
	code := binary.NativeEndian.Uint32(x[8:12])
	switch sig := code & 0x7f; {
	case sig == 0:
		ev.Name = procExitNames[(code>>8)&0xff]
	case code&0x80 != 0:
		ev.Name = procCoredumpNames[sig]
	default:
		ev.Name = procSignalNames[sig]
	}
	ev.Value, ev.HasValue = float64(tgid), true
	return true, true
}
