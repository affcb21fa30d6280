package decoder_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// auditRecord returns a record as the kernel multicasts it: its type, and
// its text after the stamp of serial.
func auditRecord(typ uint16, serial uint64, text string) []byte {
	return nlsend.AppendMessage(nil, typ, 0, []byte(fmt.Sprintf("audit(1733541234.567:%d): %s", serial, text)))
}

type auditEvent struct {
	Name, Object string
	Serial       uint64
}

func toAuditEvents(t *testing.T, evs []decoder.Event) []auditEvent {
	t.Helper()
	var out []auditEvent
	for _, e := range evs {
		if !e.HasSeq || !e.HasValue || e.Value != float64(e.Seq) {
			t.Errorf("event %s: sequence %v %d, value %v %v: want the serial as both", e.Name, e.HasSeq, e.Seq, e.HasValue, e.Value)
		}
		out = append(out, auditEvent{string(e.Name), string(e.Object), e.Seq})
	}
	return out
}

// Records as the kernel and user space write them.
const (
	apparmorDenied = `apparmor="DENIED" operation="open" class="file" profile="/usr/sbin/cups-browsed" name="/etc/shadow" pid=1234 comm="cups-browsed" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`
	selinuxDenied  = `avc:  denied  { read } for  pid=1234 comm="cat" name="shadow" dev="sda1" ino=42 scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file permissive=0`
	userAVC        = `pid=1 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='avc:  denied  { send_msg } for msgtype=method_call interface=org.freedesktop.DBus scontext=u:r:a_t:s0 tcontext=u:r:b_t:s0 tclass=dbus permissive=0 exe="/usr/bin/dbus-daemon" sauid=81 hostname=? addr=? terminal=?'`
	seccompKill    = `auid=1000 uid=1000 gid=1000 ses=2 subj=unconfined pid=4242 comm="victim" exe="/tmp/victim" sig=31 arch=c000003e syscall=39 compat=0 ip=0x7f0 code=0x80000000`
	abend          = `auid=1000 uid=1000 gid=1000 ses=2 subj=unconfined pid=4243 comm="crash" exe="/tmp/crash" sig=11 res=1`
	promiscuous    = `dev=eth0 prom=256 old_prom=0 auid=1000 uid=0 gid=0 ses=2`
	netfilterCfg   = `table=filter:2 family=2 entries=4 op=nft_register_rule pid=77 subj=unconfined comm="nft"`
	userLogin      = `pid=900 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=203.0.113.9 terminal=sshd res=failed'`
)

func TestAudit(t *testing.T) {
	for _, c := range []struct {
		name     string
		datagram []byte
		want     []auditEvent
		bad      int
	}{
		{"AppArmor denial: the profile", auditRecord(1400, 10, apparmorDenied), []auditEvent{{"AVC", "/usr/sbin/cups-browsed", 10}}, 0},
		{"SELinux denial: the target class", auditRecord(1400, 11, selinuxDenied), []auditEvent{{"AVC", "file", 11}}, 0},
		{"user space denial: the class in msg", auditRecord(1107, 12, userAVC), []auditEvent{{"USER_AVC", "dbus", 12}}, 0},
		{"seccomp: the system call's name", auditRecord(1326, 13, seccompKill), []auditEvent{{"SECCOMP", "getpid", 13}}, 0},
		{"seccomp on arm64", auditRecord(1326, 14, strings.Replace(strings.Replace(seccompKill, "c000003e", "c00000b7", 1), "syscall=39", "syscall=172", 1)), []auditEvent{{"SECCOMP", "getpid", 14}}, 0},
		{"seccomp of another architecture: the number", auditRecord(1326, 15, strings.Replace(seccompKill, "c000003e", "40000003", 1)), []auditEvent{{"SECCOMP", "39", 15}}, 0},
		{"abnormal end: the signal", auditRecord(1701, 16, abend), []auditEvent{{"ANOM_ABEND", "SIGSEGV", 16}}, 0},
		{"promiscuous: the interface", auditRecord(1700, 17, promiscuous), []auditEvent{{"ANOM_PROMISCUOUS", "eth0", 17}}, 0},
		{"firewall change: the table", auditRecord(1325, 18, netfilterCfg), []auditEvent{{"NETFILTER_CFG", "filter:2", 18}}, 0},
		{"failed login: the result", auditRecord(1112, 19, userLogin), []auditEvent{{"USER_LOGIN", "failed", 19}}, 0},
		{"a syscall record: no object", auditRecord(1300, 20, `arch=c000003e syscall=2 success=yes exit=3 a0=1 key="watch" exe="/bin/cat"`), []auditEvent{{"SYSCALL", "", 20}}, 0},
		{"a type auditd does not know", auditRecord(1999, 21, "x=1"), []auditEvent{{"UNKNOWN[1999]", "", 21}}, 0},
		{"a key= inside another field's value is not the field", auditRecord(1400, 22, `apparmor="DENIED" xprofile="no" name="a profile=x" tclass=file`), []auditEvent{{"AVC", "file", 22}}, 0},
		{"a long object is cut", auditRecord(1400, 23, `profile="`+strings.Repeat("p", 100)+`"`), []auditEvent{{"AVC", strings.Repeat("p", 64), 23}}, 0},
		{"NUL-terminated text", nlsend.AppendMessage(nil, 1701, 0, []byte("audit(1.002:24): sig=6\x00")), []auditEvent{{"ANOM_ABEND", "SIGABRT", 24}}, 0},
		{"no stamp", nlsend.AppendMessage(nil, 1400, 0, []byte("avc: denied")), nil, 1},
		{"a stamp without serial", nlsend.AppendMessage(nil, 1400, 0, []byte("audit(1.2:): x")), nil, 1},
		{"a serial that is not a number", nlsend.AppendMessage(nil, 1400, 0, []byte("audit(1.2:3a): x")), nil, 1},
		{"an unterminated stamp", nlsend.AppendMessage(nil, 1400, 0, []byte("audit(1.2:3")), nil, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, bad := decoder.NewAudit().Decode(nil, c.datagram)
			if diff := cmp.Diff(c.want, toAuditEvents(t, got)); diff != "" || bad != c.bad {
				t.Errorf("%d malformed (want %d), unexpected events (-want +got):\n%s", bad, c.bad, diff)
			}
			for _, e := range got {
				if string(e.Payload) != strings.TrimRight(string(c.datagram[16:]), "\x00") {
					t.Errorf("payload %q, want the record's text", e.Payload)
				}
			}
		})
	}
}

// TestAuditMultiRecord: the records of an event share its serial and count
// once, named by the first, though another event's records come between;
// the serials that never came are the sequence's gaps.
func TestAuditMultiRecord(t *testing.T) {
	d := decoder.NewAudit()
	var got []auditEvent
	for _, r := range [][]byte{
		auditRecord(1400, 100, selinuxDenied),
		auditRecord(1701, 101, abend),
		auditRecord(1300, 100, `arch=c000003e syscall=2 success=no exit=-13`),
		auditRecord(1307, 100, `cwd="/"`),
		auditRecord(1302, 100, `item=0 name="/etc/shadow"`),
		auditRecord(1327, 100, `proctitle=636174`),
		auditRecord(1320, 100, ``),
		auditRecord(1300, 104, `arch=c000003e syscall=59 success=yes`),
		auditRecord(1309, 104, `argc=1 a0="ls"`),
		auditRecord(1320, 104, ``),
	} {
		events, bad := d.Decode(nil, r)
		if bad != 0 {
			t.Fatalf("%q: %d malformed", r[16:], bad)
		}
		got = append(got, toAuditEvents(t, events)...)
	}
	want := []auditEvent{{"AVC", "file", 100}, {"ANOM_ABEND", "SIGSEGV", 101}, {"SYSCALL", "", 104}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unexpected events (-want +got):\n%s", diff)
	}
}

// TestAuditRateBound: past decoder.AuditRecordsPerSecond records in a
// second, records count by type with the rate-limited object and no
// payload; the next second starts afresh.
func TestAuditRateBound(t *testing.T) {
	d := decoder.NewAudit()
	now := int64(1000)
	decoder.SetAuditClock(d, func() int64 { return now })
	counts := make(map[auditEvent]int)
	serial := uint64(1)
	decode := func(n int) {
		for range n {
			events, bad := d.Decode(nil, auditRecord(1701, serial, abend))
			serial++
			if bad != 0 || len(events) != 1 {
				t.Fatalf("%d events, %d malformed", len(events), bad)
			}
			if e := events[0]; string(e.Object) == decoder.AuditRateLimited && e.Payload != nil {
				t.Fatalf("a rate-limited record has payload %q", e.Payload)
			}
			counts[auditEvent{Name: string(events[0].Name), Object: string(events[0].Object)}]++
		}
	}
	decode(decoder.AuditRecordsPerSecond + 500)
	now++
	decode(10)
	want := map[auditEvent]int{
		{Name: "ANOM_ABEND", Object: "SIGSEGV"}:                decoder.AuditRecordsPerSecond + 10,
		{Name: "ANOM_ABEND", Object: decoder.AuditRateLimited}: 500,
	}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestAuditTypeNames: the decoder names every record type of the system's
// linux/audit.h (those of 1006 and above, the ranges' bounds and
// AUDIT_MESSAGE_TEXT_MAX aside) by the header's name without AUDIT_.
func TestAuditTypeNames(t *testing.T) {
	h := readSystemHeader(t, "/usr/include/linux/audit.h")
	re := regexp.MustCompile(`(?m)^#define\s+AUDIT_([A-Z0-9_]+)\s+(\d{4})\b`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(h, -1) {
		name, v := m[1], m[2]
		typ, _ := strconv.Atoi(v)
		if typ < 1005 || typ > 2999 || strings.HasPrefix(name, "FIRST_") || strings.HasPrefix(name, "LAST_") || strings.HasSuffix(name, "_MAX") {
			continue
		}
		n++
		events, bad := decoder.NewAudit().Decode(nil, auditRecord(uint16(typ), 1, "x=1"))
		if bad != 0 || len(events) != 1 || string(events[0].Name) != name {
			t.Errorf("type %d: %d malformed, events %v, want one named %s", typ, bad, toAuditEvents(t, events), name)
		}
	}
	if n < 80 {
		t.Errorf("%d record types in the header, want at least 80", n)
	}
}

func FuzzAudit(f *testing.F) {
	f.Add(auditRecord(1400, 10, apparmorDenied))
	f.Add(auditRecord(1326, 13, seccompKill))
	f.Add(concat(auditRecord(1300, 1, "a=b"), auditRecord(1320, 1, "")))
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := decoder.NewAudit().Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		for _, e := range events {
			if len(e.Name) == 0 || len(e.Object) > 64 || !e.HasSeq {
				t.Fatalf("event %q object %q", e.Name, e.Object)
			}
		}
	})
}

// BenchmarkAuditDecode: denials, seccomp kills and crashes, a record per
// datagram as the kernel sends them, with more serials than the decoder
// remembers, so that every record is an event's first.
func BenchmarkAuditDecode(b *testing.B) {
	var records [][]byte
	for serial := range uint64(3 * 100) {
		text := []string{selinuxDenied, seccompKill, abend}[serial%3]
		records = append(records, auditRecord([]uint16{1400, 1326, 1701}[serial%3], serial+1, text))
	}
	benchmarkDecode(b, decoder.NewAudit(), records...)
}

// TestAuditDiagnose: Diagnose quotes a record without its stamp.
func TestAuditDiagnose(t *testing.T) {
	got := decoder.Diagnose(decoder.NewAudit(), nlsend.AppendMessage(nil, 1400, 0, []byte("avc: denied")))
	want := `at byte 0: record text "avc: denied" does not start with the stamp audit(<time>:<serial>):`
	if len(got) != 1 || got[0].String() != want {
		t.Errorf("Diagnose = %v, want [%s]", got, want)
	}
}
