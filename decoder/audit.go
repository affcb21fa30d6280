package decoder

import (
	"bytes"
	"strconv"
	"time"
)

// AuditGroups are the multicast groups of NETLINK_AUDIT, by the names a
// configuration may give them: AUDIT_NLGRP_READLOG, a read-only copy of
// every record, which sockets in the initial network namespace with
// CAP_AUDIT_READ may join.
var AuditGroups = map[string]uint32{"readlog": 1}

const (
	// AuditRecordsPerSecond bounds the events (their first records) per
	// second whose text the audit decoder reads for an object and keeps
	// as payload. The events past it in a second still count, by type,
	// with the object AuditRateLimited and no payload: a host with
	// syscall rules logs thousands a second.
	AuditRecordsPerSecond = 1000
	// AuditRateLimited is the object of the records past
	// AuditRecordsPerSecond.
	AuditRateLimited = "~rate_limited"

	// auditSerialWindow is how many serials the decoder remembers to
	// tell an event's later records from a new event's first.
	auditSerialWindow = 256
	// auditObjectMax bounds an object taken from a record's text.
	auditObjectMax = 64
)

// auditTypeNames are the record types as auditd names them: the kernel's,
// from linux/audit.h (a test checks them against the header), and the
// user space ones of libaudit.h that the kernel relays (1100-1199).
var auditTypeNames = map[uint16]string{
	1005: "USER", 1006: "LOGIN", 1007: "WATCH_INS", 1008: "WATCH_REM",
	1009: "WATCH_LIST", 1010: "SIGNAL_INFO", 1011: "ADD_RULE", 1012: "DEL_RULE",
	1013: "LIST_RULES", 1014: "TRIM", 1015: "MAKE_EQUIV", 1016: "TTY_GET",
	1017: "TTY_SET", 1018: "SET_FEATURE", 1019: "GET_FEATURE", 1100: "USER_AUTH", 1101: "USER_ACCT",
	1102: "USER_MGMT", 1103: "CRED_ACQ", 1104: "CRED_DISP", 1105: "USER_START",
	1106: "USER_END", 1107: "USER_AVC", 1108: "USER_CHAUTHTOK", 1109: "USER_ERR",
	1110: "CRED_REFR", 1111: "USYS_CONFIG", 1112: "USER_LOGIN", 1113: "USER_LOGOUT",
	1114: "ADD_USER", 1115: "DEL_USER", 1116: "ADD_GROUP", 1117: "DEL_GROUP",
	1118: "DAC_CHECK", 1119: "CHGRP_ID", 1120: "TEST", 1121: "TRUSTED_APP",
	1122: "USER_SELINUX_ERR", 1123: "USER_CMD", 1124: "USER_TTY", 1125: "CHUSER_ID",
	1126: "GRP_AUTH", 1127: "SYSTEM_BOOT", 1128: "SYSTEM_SHUTDOWN",
	1129: "SYSTEM_RUNLEVEL", 1130: "SERVICE_START", 1131: "SERVICE_STOP",
	1132: "GRP_MGMT", 1133: "GRP_CHAUTHTOK", 1134: "MAC_CHECK", 1135: "ACCT_LOCK",
	1136: "ACCT_UNLOCK", 1137: "USER_DEVICE", 1138: "SOFTWARE_UPDATE",
	1200: "DAEMON_START", 1201: "DAEMON_END", 1202: "DAEMON_ABORT", 1203: "DAEMON_CONFIG",
	1300: "SYSCALL", 1302: "PATH", 1303: "IPC", 1304: "SOCKETCALL", 1305: "CONFIG_CHANGE",
	1306: "SOCKADDR", 1307: "CWD", 1309: "EXECVE", 1311: "IPC_SET_PERM", 1312: "MQ_OPEN",
	1313: "MQ_SENDRECV", 1314: "MQ_NOTIFY", 1315: "MQ_GETSETATTR", 1316: "KERNEL_OTHER",
	1317: "FD_PAIR", 1318: "OBJ_PID", 1319: "TTY", 1320: "EOE", 1321: "BPRM_FCAPS",
	1322: "CAPSET", 1323: "MMAP", 1324: "NETFILTER_PKT", 1325: "NETFILTER_CFG",
	1326: "SECCOMP", 1327: "PROCTITLE", 1328: "FEATURE_CHANGE", 1329: "REPLACE",
	1330: "KERN_MODULE", 1331: "FANOTIFY", 1332: "TIME_INJOFFSET", 1333: "TIME_ADJNTPVAL",
	1334: "BPF", 1335: "EVENT_LISTENER", 1336: "URINGOP", 1337: "OPENAT2",
	1338: "DM_CTRL", 1339: "DM_EVENT",
	1400: "AVC", 1401: "SELINUX_ERR", 1402: "AVC_PATH", 1403: "MAC_POLICY_LOAD",
	1404: "MAC_STATUS", 1405: "MAC_CONFIG_CHANGE", 1406: "MAC_UNLBL_ALLOW",
	1407: "MAC_CIPSOV4_ADD", 1408: "MAC_CIPSOV4_DEL", 1409: "MAC_MAP_ADD",
	1410: "MAC_MAP_DEL", 1411: "MAC_IPSEC_ADDSA", 1412: "MAC_IPSEC_DELSA",
	1413: "MAC_IPSEC_ADDSPD", 1414: "MAC_IPSEC_DELSPD", 1415: "MAC_IPSEC_EVENT",
	1416: "MAC_UNLBL_STCADD", 1417: "MAC_UNLBL_STCDEL", 1418: "MAC_CALIPSO_ADD",
	1419: "MAC_CALIPSO_DEL", 1420: "IPE_ACCESS", 1421: "IPE_CONFIG_CHANGE",
	1422: "IPE_POLICY_LOAD", 1423: "LANDLOCK_ACCESS", 1424: "LANDLOCK_DOMAIN",
	1425: "MAC_TASK_CONTEXTS", 1426: "MAC_OBJ_CONTEXTS",
	1700: "ANOM_PROMISCUOUS", 1701: "ANOM_ABEND", 1702: "ANOM_LINK", 1703: "ANOM_CREAT",
	1800: "INTEGRITY_DATA", 1801: "INTEGRITY_METADATA", 1802: "INTEGRITY_STATUS",
	1803: "INTEGRITY_HASH", 1804: "INTEGRITY_PCR", 1805: "INTEGRITY_RULE",
	1806: "INTEGRITY_EVM_XATTR", 1807: "INTEGRITY_POLICY_RULE", 2000: "KERNEL",
}

// The record types whose objects the decoder reads.
const (
	auditUserAVC     = 1107
	auditUserLogin   = 1112
	auditNetfilterCf = 1325
	auditSeccomp     = 1326
	auditAVC         = 1400
	auditPromiscuous = 1700
	auditAbend       = 1701

	// AUDIT_ARCH_X86_64 and AUDIT_ARCH_AARCH64, the arch= of the system
	// calls the decoder names.
	auditArchX8664   = 0xc000003e
	auditArchAarch64 = 0xc00000b7
)

// Names made once, so that decoding picks from them.
var (
	auditNames = func() map[uint16][]byte {
		m := make(map[uint16][]byte, len(auditTypeNames))
		for t, n := range auditTypeNames {
			m[t] = []byte(n)
		}
		return m
	}()
	auditSignals     = procNames("", sigRTMax+1, signalName)
	auditSyscalls    = map[uint32][][]byte{auditArchX8664: byteNames(auditSyscallsX8664[:]), auditArchAarch64: byteNames(auditSyscallsAarch64[:])}
	auditRateLimited = []byte(AuditRateLimited)
)

func byteNames(names []string) [][]byte {
	b := make([][]byte, len(names))
	for i, n := range names {
		if n != "" {
			b[i] = []byte(n)
		}
	}
	return b
}

// Audit decodes the kernel's audit records (NETLINK_AUDIT, group readlog),
// as auditd receives them, into events: one per audit event, named by its
// first record's type as auditd names it (AVC, USER_AVC, SECCOMP,
// ANOM_ABEND, USER_LOGIN, NETFILTER_CFG...), or UNKNOWN[<type>] as
// ausearch names a type it does not know. The later records of a
// multi-record event (SYSCALL, PATH, PROCTITLE, EOE after an AVC), which
// share its serial, give no events. The value is the serial, which is also
// the event's sequence number: the serials missing between events are
// records lost, by the kernel (its backlog or rate limit) or by the
// exporter. The decoder remembers the last 256 serials: a record further
// behind its event's first (the SYSCALL record of a system call that
// blocked while 256 other events were logged) counts again, and as a
// duplicate in the sequence metrics. The payload is the record's text,
// "audit(<time>:<serial>): ...".
//
// The object is a bounded property of the records that have one, never a
// pid, path, executable or key:
//
//   - AVC and USER_AVC: the AppArmor profile (profile=), else the SELinux
//     target class (tclass=) of the decision;
//   - SECCOMP: the system call's name (x86-64 and arm64; its number for
//     other architectures);
//   - ANOM_ABEND: the signal that ended the process, as SIGSEGV;
//   - ANOM_PROMISCUOUS: the interface (dev=);
//   - NETFILTER_CFG: the table (table=);
//   - USER_LOGIN: the result (res=), success or failed.
//
// Past AuditRecordsPerSecond events in a second, events count with the
// object AuditRateLimited and no payload, their text unread but for the
// serial (which the later records of an event need no more than).
type Audit struct {
	faults
	// serials is a ring of the last serials seen; next is where the next
	// goes.
	serials [auditSerialWindow]uint64
	next    int

	second int64
	inSec  int
	now    func() int64

	buf []byte
}

// NewAudit returns an audit decoder.
func NewAudit() *Audit {
	return &Audit{now: func() int64 { return time.Now().Unix() }}
}

// Decode implements Decoder. The kernel multicasts one record per
// datagram.
func (d *Audit) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return appendMessages(events, datagram, d)
}

func (d *Audit) diagnose(datagram []byte) []Problem {
	return diagnoseMessages(datagram, NewAudit())
}

func (d *Audit) appendMessage(events []Event, m message) ([]Event, bool) {
	text := cString(m.Payload)
	serial, body, ok := auditStamp(text)
	if !ok {
		return events, d.fail(m, fault{reason: "record text %s does not start with the stamp audit(<time>:<serial>):", quote: text})
	}
	if d.seen(serial) {
		// A later record of an event already counted.
		return events, true
	}
	ev := Event{
		Name:     d.typeName(m.Type),
		Value:    float64(serial),
		HasValue: true,
		HasSeq:   true,
		Seq:      serial,
	}
	if sec := d.now(); sec != d.second {
		d.second, d.inSec = sec, 0
	}
	d.inSec++
	if d.inSec > AuditRecordsPerSecond {
		ev.Object = auditRateLimited
		return append(events, ev), true
	}
	ev.Payload = text
	ev.Object = d.object(m.Type, body)
	return append(events, ev), true
}

// seen reports whether serial was among the last auditSerialWindow ones,
// and remembers it if not.
func (d *Audit) seen(serial uint64) bool {
	for _, s := range d.serials {
		if s == serial {
			return true
		}
	}
	d.serials[d.next] = serial
	d.next = (d.next + 1) % auditSerialWindow
	return false
}

// typeName returns record type t's name.
func (d *Audit) typeName(t uint16) []byte {
	if n, ok := auditNames[t]; ok {
		return n
	}
	start := len(d.buf)
	d.buf = append(strconv.AppendUint(append(d.buf, "UNKNOWN["...), uint64(t), 10), ']')
	return d.buf[start:len(d.buf):len(d.buf)]
}

// auditStamp reads the "audit(<seconds>.<millis>:<serial>): " that starts
// a record's text and returns the serial and the text after it.
func auditStamp(text []byte) (serial uint64, body []byte, ok bool) {
	const prefix = "audit("
	if !bytes.HasPrefix(text, []byte(prefix)) {
		return 0, nil, false
	}
	end := bytes.IndexByte(text, ')')
	colon := bytes.IndexByte(text[:max(end, 0)], ':')
	if end < 0 || colon < 0 {
		return 0, nil, false
	}
	digits := text[colon+1 : end]
	if len(digits) == 0 || len(digits) > 20 {
		return 0, nil, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, nil, false
		}
		serial = serial*10 + uint64(c-'0')
	}
	body = text[end+1:]
	body = bytes.TrimPrefix(body, []byte(":"))
	return serial, bytes.TrimPrefix(body, []byte(" ")), true
}

// object returns the object of a record of type t with text body, or nil.
func (d *Audit) object(t uint16, body []byte) []byte {
	switch t {
	case auditAVC, auditUserAVC:
		if v := auditField(body, "profile"); v != nil {
			return v
		}
		return auditField(body, "tclass")
	case auditSeccomp:
		return d.syscall(auditField(body, "arch"), auditField(body, "syscall"))
	case auditAbend:
		if sig, ok := auditNumber(auditField(body, "sig")); ok && sig < uint64(len(auditSignals)) {
			return auditSignals[sig]
		}
		return auditField(body, "sig")
	case auditPromiscuous:
		return auditField(body, "dev")
	case auditNetfilterCf:
		return auditField(body, "table")
	case auditUserLogin:
		return auditField(body, "res")
	}
	return nil
}

// syscall names system call number nr (decimal) of audit architecture arch
// (hexadecimal), or returns the number.
func (d *Audit) syscall(arch, nr []byte) []byte {
	n, ok := auditNumber(nr)
	if !ok {
		return nil
	}
	a, ok := auditHex(arch)
	if names := auditSyscalls[uint32(a)]; ok && n < uint64(len(names)) && names[n] != nil {
		return names[n]
	}
	return nr
}

// auditNumber parses a decimal field of at most 9 digits, without the
// allocations of strconv's errors.
func auditNumber(v []byte) (n uint64, ok bool) {
	if len(v) == 0 || len(v) > 9 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// auditHex parses a hexadecimal field of at most 8 digits, as an audit
// architecture.
func auditHex(v []byte) (n uint64, ok bool) {
	if len(v) == 0 || len(v) > 8 {
		return 0, false
	}
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | uint64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// auditField returns the value of field key of a record's text, without
// the double quotes of a quoted value, or nil if it has none. A text is
// words, of which fields are key=value; a value in single quotes (user
// space's msg='...') is read as more fields. Values longer than
// auditObjectMax are cut.
func auditField(text []byte, key string) []byte {
	for i := 0; i < len(text); {
		if c := text[i]; c == ' ' || c == '\'' {
			i++
			continue
		}
		// A word: a field, or text such as "avc:" or "{".
		end := i
		for end < len(text) && text[end] != ' ' && text[end] != '=' {
			end++
		}
		if end == len(text) || text[end] == ' ' {
			i = end
			continue
		}
		k := text[i:end]
		i = end + 1
		var v []byte
		switch {
		case i < len(text) && text[i] == '"':
			v = text[i+1:]
			if q := bytes.IndexByte(v, '"'); q >= 0 {
				v = v[:q]
			}
			i += 2 + len(v)
		case i < len(text) && text[i] == '\'':
			// Its fields are read as the text's.
			continue
		default:
			v = text[i:]
			if q := bytes.IndexAny(v, " '"); q >= 0 {
				v = v[:q]
			}
			i += len(v)
		}
		if string(k) == key {
			if len(v) > auditObjectMax {
				v = v[:auditObjectMax]
			}
			return v
		}
	}
	return nil
}
