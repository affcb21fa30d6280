//go:build vmtest

package vmtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// The module's generic netlink family is tested here without the exporter,
// through sockets of the test itself (as root).

// classicParams turns on the module's classic protocol as keventConfig
// expects it (the seed-style setup): by default the module registers the
// generic netlink family only.
const classicParams = "protocol=29 group=2"

// quietFor is how long a socket must stay silent to show that it receives
// nothing.
const quietFor = 500 * time.Millisecond

// keventMsg is one kevent event message as a listener receives it.
type keventMsg struct {
	Type         netlink.HeaderType // nlmsg_type: the family id, or KEVENT_MSG_EVENT
	PID          uint32             // nlmsg_pid: 0 for the kernel
	Cmd, Version uint8              // generic netlink header; 0 on the classic transport
	Seq          uint64
	Instance     uint64
	TimestampNS  uint64
	Name         string
	Value        int64
	Payload      string
	HasPayload   bool
}

func (m keventMsg) String() string {
	s := fmt.Sprintf("type %#x cmd %d version %d seq %d instance %d %s=%d", uint16(m.Type), m.Cmd, m.Version,
		m.Seq, m.Instance, m.Name, m.Value)
	if m.HasPayload {
		s += fmt.Sprintf(" payload %q", m.Payload)
	}
	return s
}

// cString returns a NUL-terminated string attribute's text.
func cString(b []byte) (string, error) {
	if len(b) == 0 || b[len(b)-1] != 0 {
		return "", fmt.Errorf("string attribute %q is not NUL-terminated", b)
	}
	return string(b[:len(b)-1]), nil
}

// decodeKeventMsg decodes an event message; genl says whether it starts with
// a generic netlink header.
func decodeKeventMsg(m netlink.Message, genl bool) (keventMsg, error) {
	ev := keventMsg{Type: m.Header.Type, PID: m.Header.PID}
	b := m.Data
	if genl {
		if len(b) < 4 {
			return ev, fmt.Errorf("%d bytes: no generic netlink header", len(b))
		}
		ev.Cmd, ev.Version = b[0], b[1]
		b = b[4:]
	}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ev, err
	}
	for ad.Next() {
		switch ad.Type() {
		case decoder.KeventAttrSeq:
			ev.Seq = ad.Uint64()
		case decoder.KeventAttrInstance:
			ev.Instance = ad.Uint64()
		case decoder.KeventAttrTimestampNS:
			ev.TimestampNS = ad.Uint64()
		case decoder.KeventAttrValue:
			ev.Value = ad.Int64()
		case decoder.KeventAttrName:
			ad.Do(func(b []byte) (err error) { ev.Name, err = cString(b); return err })
		case decoder.KeventAttrPayload:
			ad.Do(func(b []byte) (err error) { ev.Payload, err = cString(b); return err })
			ev.HasPayload = true
		}
	}
	return ev, ad.Err()
}

// listener receives the module's events on one socket.
type listener struct {
	what    string
	c       *netlink.Conn
	genl    bool
	pending []netlink.Message
}

// listenGenl joins the multicast group named group of family f on a new
// generic netlink socket, closed at the end of the test.
func listenGenl(t *testing.T, f genetlink.Family, group string) *listener {
	t.Helper()
	id, ok := groupID(f, group)
	if !ok {
		t.Fatalf("family %s (id %d) has no group %q: %v", f.Name, f.ID, group, f.Groups)
	}
	c, err := netlink.Dial(unix.NETLINK_GENERIC, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.JoinGroup(id); err != nil {
		t.Fatalf("joining group %s/%s (id %d): %v", f.Name, group, id, err)
	}
	return &listener{what: fmt.Sprintf("genl %s/%s", f.Name, group), c: c, genl: true}
}

// listenClassic binds a socket of the classic protocol to group. The socket
// holds the module: close it before rmmod.
func listenClassic(t *testing.T, protocol, group int) *listener {
	t.Helper()
	c, err := netlink.Dial(protocol, &netlink.Config{Groups: 1 << (group - 1)})
	if err != nil {
		t.Fatalf("classic netlink protocol %d group %d: %v", protocol, group, err)
	}
	return &listener{what: fmt.Sprintf("classic %d/%d", protocol, group), c: c}
}

func (l *listener) Close() { l.c.Close() }

// nextMsg returns the next message, waiting at most timeout.
func (l *listener) nextMsg(timeout time.Duration) (netlink.Message, error) {
	for len(l.pending) == 0 {
		if err := l.c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return netlink.Message{}, err
		}
		msgs, err := l.c.Receive()
		if err != nil {
			return netlink.Message{}, err
		}
		l.pending = msgs
	}
	m := l.pending[0]
	l.pending = l.pending[1:]
	return m, nil
}

// next returns the next event, waiting at most timeout.
func (l *listener) next(timeout time.Duration) (keventMsg, error) {
	m, err := l.nextMsg(timeout)
	if err != nil {
		return keventMsg{}, err
	}
	ev, err := decodeKeventMsg(m, l.genl)
	if err != nil {
		return ev, fmt.Errorf("%s: %v (%s)", l.what, err, ev)
	}
	return ev, nil
}

// until returns the events received up to and including the first one named
// name.
func (l *listener) until(t *testing.T, name string) []keventMsg {
	t.Helper()
	var evs []keventMsg
	for {
		ev, err := l.next(10 * time.Second)
		if err != nil {
			t.Fatalf("%s: waiting for event %s: %v (received before: %v)", l.what, name, err, evs)
		}
		evs = append(evs, ev)
		if ev.Name == name {
			return evs
		}
	}
}

// quiet reports an error unless nothing arrives for quietFor.
func (l *listener) quiet() error {
	ev, err := l.next(quietFor)
	switch {
	case err == nil:
		return fmt.Errorf("%s received %s", l.what, ev)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	default:
		return fmt.Errorf("%s: %v", l.what, err)
	}
}

// genlFamily resolves a generic netlink family by name (CTRL_CMD_GETFAMILY).
func genlFamily(name string) (genetlink.Family, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return genetlink.Family{}, err
	}
	defer c.Close()
	return c.GetFamily(name)
}

// keventFamily resolves the kevent family and checks its version.
func keventFamily(t *testing.T) genetlink.Family {
	t.Helper()
	f, err := genlFamily(decoder.KeventGenlFamily)
	if err != nil {
		t.Fatalf("resolving generic netlink family %q: %v", decoder.KeventGenlFamily, err)
	}
	if f.Version != decoder.KeventGenlVersion {
		t.Errorf("family %s version %d, want %d", f.Name, f.Version, decoder.KeventGenlVersion)
	}
	return f
}

// familyGone fails the test unless resolving the kevent family fails with
// ENOENT.
func familyGone(t *testing.T, when string) {
	t.Helper()
	f, err := genlFamily(decoder.KeventGenlFamily)
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("%s: CTRL_CMD_GETFAMILY %q: family %+v, error %v; want ENOENT", when, decoder.KeventGenlFamily, f, err)
		return
	}
	t.Logf("%s: CTRL_CMD_GETFAMILY %q: %v", when, decoder.KeventGenlFamily, err)
}

func groupID(f genetlink.Family, name string) (uint32, bool) {
	for _, g := range f.Groups {
		if g.Name == name {
			return g.ID, true
		}
	}
	return 0, false
}

// netlinkSockets returns the lines of /proc/net/netlink of sockets of
// protocol; a kernel socket, such as the one a module registers a protocol
// with, has Pid 0.
func netlinkSockets(t *testing.T, protocol int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/netlink")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		if f := strings.Fields(line); len(f) > 2 && f[1] == strconv.Itoa(protocol) {
			out = append(out, strings.Join(f[1:4], " "))
		}
	}
	return out
}

// checkEvent fails the test unless ev is the kevent message of an emit of
// name value payload on the genl (or classic) transport.
func checkEvent(t *testing.T, ev keventMsg, genl bool, familyID uint16, name string, value int64, payload string) {
	t.Helper()
	wantType := netlink.HeaderType(decoder.KeventMsgEvent)
	var wantCmd, wantVersion uint8
	if genl {
		wantType, wantCmd, wantVersion = netlink.HeaderType(familyID), decoder.KeventCmdEvent, decoder.KeventGenlVersion
	}
	if ev.Type != wantType || ev.Cmd != wantCmd || ev.Version != wantVersion || ev.PID != 0 {
		t.Errorf("%s: type %#x cmd %d version %d pid %d; want type %#x cmd %d version %d pid 0",
			ev.Name, uint16(ev.Type), ev.Cmd, ev.Version, ev.PID, uint16(wantType), wantCmd, wantVersion)
	}
	if ev.Name != name || ev.Value != value || ev.Payload != payload || ev.HasPayload != (payload != "") {
		t.Errorf("received %s, want %s=%d payload %q", ev, name, value, payload)
	}
	if ev.Seq == 0 || ev.Instance == 0 || ev.TimestampNS == 0 {
		t.Errorf("%s: seq %d instance %d timestamp %d, want all set", ev.Name, ev.Seq, ev.Instance, ev.TimestampNS)
	}
	if d := time.Since(time.Unix(0, int64(ev.TimestampNS))); d < 0 || d > time.Minute {
		t.Errorf("%s: timestamp %d is %v from now", ev.Name, ev.TimestampNS, d)
	}
}

// inNewNetns runs a busybox shell script in a new network namespace, as a
// child process created with CLONE_NEWNET; the namespace goes when the
// script ends (and the kernel gets round to destroying it). A child rather
// than a locked OS thread of the test: a locked thread that unshared may be
// the process's main thread, which Go parks instead of ending, and then
// /proc/self/net of the whole test would be the new namespace's.
func inNewNetns(script string) (string, error) {
	cmd := exec.Command(*busybox, "sh", "-ec", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s in a new network namespace: %v: %s", script, err, bytes.TrimSpace(out))
	}
	return string(bytes.TrimSpace(out)), nil
}

// TestGenlFamily: with default parameters, the module registers the generic
// netlink family "kevent" (version 1) with the group "events", and no
// classic protocol; a socket joined to the group receives events written to
// emit, with the module's sequence number; the netdevice notifier reports
// interfaces of the initial network namespace only.
func TestGenlFamily(t *testing.T) {
	kevent := useModule(t, "kevent")
	kevent.load(t, "heartbeat_ms=0")

	f := keventFamily(t)
	t.Logf("family %q: id %d, version %d, groups %v", f.Name, f.ID, f.Version, f.Groups)
	if _, ok := groupID(f, decoder.KeventGenlGroup); !ok || len(f.Groups) != 1 {
		t.Fatalf("groups %v, want just %q", f.Groups, decoder.KeventGenlGroup)
	}
	if s := netlinkSockets(t, 29); len(s) > 0 {
		t.Errorf("protocol 29 sockets after a default insmod: %q", s)
	}
	l := listenGenl(t, f, decoder.KeventGenlGroup)

	emit(t, "genl_test 42 payload with  spaces")
	emit(t, "genl_neg -7")
	evs := l.until(t, "genl_neg")
	if len(evs) != 2 {
		t.Fatalf("received %v, want genl_test and genl_neg", evs)
	}
	checkEvent(t, evs[0], true, f.ID, "genl_test", 42, "payload with  spaces")
	checkEvent(t, evs[1], true, f.ID, "genl_neg", -7, "")
	if seq := keventStat(t, "seq"); evs[1].Seq != uint64(seq) || evs[0].Seq != uint64(seq-1) {
		t.Errorf("seq %d and %d, want %d and %d (stats)", evs[0].Seq, evs[1].Seq, seq-1, seq)
	}
	if inst := stats(); !strings.Contains(inst, fmt.Sprintf("instance %d ", evs[0].Instance)) {
		t.Errorf("instance %d, stats say %s", evs[0].Instance, inst)
	}
	for _, ev := range evs {
		t.Logf("  received %s", ev)
	}
	t.Logf("module stats: %s", stats())
	if sent := keventStat(t, "genl_sent"); sent != 2 {
		t.Errorf("genl_sent %d, want 2", sent)
	}

	// Interfaces in another network namespace: lo, registered with the
	// namespace, and a dummy taken up and down. Then one in the initial
	// namespace, which must be reported.
	if _, err := os.Stat(filepath.Join(*moduleDir, "dummy.ko")); err == nil {
		useModule(t, "dummy").load(t, "numdummies=0")
	}
	const nsScript = "ip link set lo up; ip link add n0 type dummy; ip link set n0 up; ip -o link show; ip link set n0 down; ip link del n0"
	nsDummy := true
	out, err := inNewNetns(nsScript)
	if err != nil {
		t.Logf("no dummy interface in the namespace (%v): lo only", err)
		nsDummy = false
		out, err = inNewNetns("ip link set lo up; ip -o link show; ip link set lo down")
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 {
			t.Logf("  in the other namespace: %s %s", f[0], f[1])
		}
	}
	dev := "lo"
	if nsDummy {
		if err := ip("link", "add", "k0", "type", "dummy"); err != nil {
			t.Fatal(err)
		}
		dev = "k0"
		if err := ip("link", "set", "k0", "up"); err != nil {
			t.Fatal(err)
		}
		if err := ip("link", "del", "k0"); err != nil {
			t.Fatal(err)
		}
	} else {
		for _, args := range [][]string{{"link", "set", "lo", "down"}, {"link", "set", "lo", "up"}} {
			if err := ip(args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	emit(t, "netns_marker 1")
	evs = l.until(t, "netns_marker")
	var reported []string
	for _, ev := range evs[:len(evs)-1] {
		reported = append(reported, fmt.Sprintf("%s %s", ev.Name, ev.Payload))
		if ev.Payload != dev {
			t.Errorf("reported %s: not the initial namespace's %s", ev, dev)
		}
	}
	t.Logf("netdevice events before the marker: %s", strings.Join(reported, ", "))
	want := []string{"netdev_down lo", "netdev_up lo"}
	if nsDummy {
		want = []string{"netdev_register k0", "netdev_up k0", "netdev_down k0", "netdev_unregister k0"}
	}
	for _, w := range want {
		if !slices.Contains(reported, w) {
			t.Errorf("no %s from the initial namespace", w)
		}
	}
	// Without a dummy, both namespaces' interface is lo: only the number of
	// events tells them apart.
	if !nsDummy && len(reported) != len(want) {
		t.Errorf("reported %q, want only %q", reported, want)
	}
	// The namespace is destroyed asynchronously once its process ended (its
	// lo unregisters then): give it a moment, then check that nothing of it
	// was reported either.
	time.Sleep(time.Second)
	emit(t, "netns_marker 2")
	evs = l.until(t, "netns_marker")
	for _, ev := range evs[:len(evs)-1] {
		t.Errorf("reported after the namespace was released: %s", ev)
	}
	if !t.Failed() {
		what := "lo"
		if nsDummy {
			what = "lo and dummy n0 (register, up, down, unregister)"
		}
		t.Logf("family %s id %d version %d group %s: emits received with their seq; %s in another namespace not reported, %s in the initial one reported",
			f.Name, f.ID, f.Version, decoder.KeventGenlGroup, what, dev)
	}
}

// TestGenlRmmodWhileJoined: rmmod kevent succeeds while a socket is joined to
// the family's group (it does not hold the module, unlike a classic socket
// on the module's protocol); the family is gone after it, the controller
// announces it, and after a new insmod the old socket must join the group
// again to receive.
func TestGenlRmmodWhileJoined(t *testing.T) {
	kevent := useModule(t, "kevent")

	// The controller's own group, where it announces families.
	ctrl, err := genlFamily("nlctrl")
	if err != nil {
		t.Fatal(err)
	}
	notify := listenGenl(t, ctrl, "notify")
	// ctrlEvents returns the announcements until none comes for quietFor.
	ctrlEvents := func() []string {
		var out []string
		for {
			m, err := notify.nextMsg(quietFor)
			if err != nil {
				return out
			}
			out = append(out, ctrlEvent(m))
		}
	}

	kevent.load(t, "heartbeat_ms=0")
	f := keventFamily(t)
	l := listenGenl(t, f, decoder.KeventGenlGroup)
	emit(t, "before_rmmod 1")
	ev := l.until(t, "before_rmmod")[0]
	t.Logf("joined %s (id %d) and received %s", decoder.KeventGenlGroup, f.Groups[0].ID, ev)
	t.Logf("controller on insmod: %s", strings.Join(ctrlEvents(), ", "))
	t.Logf("/proc/modules: %s", procModules("kevent"))

	err = kevent.remove()
	t.Logf("rmmod while a socket is joined to the group: %v", err)
	if err != nil {
		t.Fatalf("rmmod kevent while joined: %v, want success", err)
	}
	if kevent.loaded() {
		t.Fatal("kevent still loaded after rmmod")
	}
	familyGone(t, "after rmmod")
	del := ctrlEvents()
	t.Logf("controller on rmmod: %s", strings.Join(del, ", "))
	if !slices.Contains(del, "DELFAMILY "+decoder.KeventGenlFamily) {
		t.Errorf("no CTRL_CMD_DELFAMILY %s on the controller's notify group", decoder.KeventGenlFamily)
	}
	if err := l.quiet(); err != nil {
		t.Errorf("after rmmod: %v", err)
	}
	if l := dmesgLines(t, "kevent: unloaded", "kevent: genl:"); len(l) > 0 {
		t.Logf("  %s", strings.Join(l[max(0, len(l)-2):], " | "))
	}

	// A new instance: the old membership was cleared with the family.
	kevent.load(t, "heartbeat_ms=0")
	f2 := keventFamily(t)
	t.Logf("after insmod again: family id %d (was %d), groups %v (were %v); controller: %s",
		f2.ID, f.ID, f2.Groups, f.Groups, strings.Join(ctrlEvents(), ", "))
	l2 := listenGenl(t, f2, decoder.KeventGenlGroup)
	emit(t, "after_reload 2")
	if err := l.quiet(); err != nil {
		t.Errorf("the old membership outlived rmmod: %v", err)
	}
	ev2 := l2.until(t, "after_reload")[0]
	checkEvent(t, ev2, true, f2.ID, "after_reload", 2, "")
	if ev2.Seq != 1 || ev2.Instance == ev.Instance {
		t.Errorf("after reload: seq %d instance %d, want seq 1 of a new instance (old %d)", ev2.Seq, ev2.Instance, ev.Instance)
	}
	if !t.Failed() {
		t.Log("rmmod succeeded while joined to the group; family gone (ENOENT), DELFAMILY announced; after insmod the group must be joined again")
	}
}

// ctrlEvent describes a message of the controller's notify group:
// "DELFAMILY kevent" and so on.
func ctrlEvent(m netlink.Message) string {
	if len(m.Data) < 4 {
		return fmt.Sprintf("short message %v", m)
	}
	cmds := map[uint8]string{
		unix.CTRL_CMD_NEWFAMILY: "NEWFAMILY", unix.CTRL_CMD_DELFAMILY: "DELFAMILY",
		unix.CTRL_CMD_NEWMCAST_GRP: "NEWMCAST_GRP", unix.CTRL_CMD_DELMCAST_GRP: "DELMCAST_GRP",
	}
	cmd, ok := cmds[m.Data[0]]
	if !ok {
		cmd = fmt.Sprintf("cmd %d", m.Data[0])
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return cmd + " " + err.Error()
	}
	name := "?"
	for ad.Next() {
		if ad.Type() == unix.CTRL_ATTR_FAMILY_NAME {
			name = ad.String()
		}
	}
	return cmd + " " + name
}

// TestTransports: every event goes to each enabled transport with the same
// sequence number: generic netlink only by default, both with protocol=29
// group=2, classic only with genl=0 protocol=29 group=2.
func TestTransports(t *testing.T) {
	for _, c := range []struct {
		params        string
		genl, classic bool
	}{
		{params: "", genl: true},
		{params: classicParams, genl: true, classic: true},
		{params: "genl=0 " + classicParams, classic: true},
	} {
		t.Run(strings.NewReplacer("=", "", " ", "_").Replace(c.params+"_"), func(t *testing.T) {
			kevent := useModule(t, "kevent")
			kevent.load(t, c.params+" heartbeat_ms=0")
			var params []string
			for _, p := range []string{"genl", "protocol", "group"} {
				b, err := os.ReadFile("/sys/module/kevent/parameters/" + p)
				if err != nil {
					t.Fatal(err)
				}
				params = append(params, p+"="+strings.TrimSpace(string(b)))
			}
			socks := netlinkSockets(t, 29)
			t.Logf("insmod kevent.ko %q: parameters %s; protocol 29 sockets (eth pid groups) %q", c.params, strings.Join(params, " "), socks)

			var listeners []*listener
			var familyID uint16
			if c.genl {
				f := keventFamily(t)
				familyID = f.ID
				listeners = append(listeners, listenGenl(t, f, decoder.KeventGenlGroup))
			} else {
				familyGone(t, "genl=0")
			}
			if c.classic {
				if !slices.ContainsFunc(socks, func(s string) bool { return strings.HasPrefix(s, "29 0 ") }) {
					t.Errorf("no kernel socket (pid 0) of protocol 29 in /proc/net/netlink: %q", socks)
				}
				cl := listenClassic(t, 29, 2)
				// Closed before the cleanup's rmmod: it holds the module.
				defer cl.Close()
				listeners = append(listeners, cl)
			} else {
				if len(socks) > 0 {
					t.Errorf("protocol 29 sockets without protocol=29: %q", socks)
				}
				if c, err := netlink.Dial(29, nil); err == nil {
					c.Close()
					t.Error("a socket of protocol 29 could be opened: the protocol is registered")
				} else {
					t.Logf("socket(AF_NETLINK, SOCK_RAW, 29): %v", err)
				}
			}

			emit(t, "both 5 on every transport")
			var got []string
			var seqs, instances, stamps []uint64
			for _, l := range listeners {
				evs := l.until(t, "both")
				if len(evs) != 1 {
					t.Errorf("%s: received %v, want only the emit", l.what, evs)
				}
				ev := evs[len(evs)-1]
				checkEvent(t, ev, l.genl, familyID, "both", 5, "on every transport")
				got = append(got, fmt.Sprintf("%s: %s", l.what, ev))
				seqs, instances, stamps = append(seqs, ev.Seq), append(instances, ev.Instance), append(stamps, ev.TimestampNS)
				if err := l.quiet(); err != nil {
					t.Error(err)
				}
			}
			for _, s := range got {
				t.Logf("  %s", s)
			}
			if len(slices.Compact(seqs)) != 1 || len(slices.Compact(instances)) != 1 || len(slices.Compact(stamps)) != 1 {
				t.Errorf("one event, different seq %v, instance %v or timestamp %v across transports", seqs, instances, stamps)
			}
			if seq := keventStat(t, "seq"); seqs[0] != uint64(seq) {
				t.Errorf("seq %d, stats say %d", seqs[0], seq)
			}
			t.Logf("module stats: %s", stats())
			for _, tr := range []struct {
				name string
				on   bool
			}{{"genl", c.genl}, {"classic", c.classic}} {
				want := int64(0)
				if tr.on {
					want = 1
				}
				if n := keventStat(t, tr.name+"_sent"); n != want {
					t.Errorf("%s_sent %d, want %d", tr.name, n, want)
				}
			}
			if !t.Failed() {
				t.Logf("insmod %q: the emit arrived on %d transport(s) with seq %d", c.params, len(listeners), seqs[0])
			}
		})
	}
}

// TestRmmodDuringBurst: rmmod kevent while a burst write is sending to both
// transports, the heartbeat runs every millisecond and a socket is joined to
// the group: the burst stops early (ENODEV), rmmod succeeds without waiting
// for the rest of it, and the kernel logs no warning.
func TestRmmodDuringBurst(t *testing.T) {
	kevent := useModule(t, "kevent")
	kevent.load(t, classicParams+" heartbeat_ms=1")
	l := listenGenl(t, keventFamily(t), decoder.KeventGenlGroup)
	warningsBefore := len(dmesgLines(t, "WARNING:", "BUG:", "Oops", "Call Trace"))

	const burst = 10000000
	done := make(chan error, 1)
	go func() { done <- kwrite(sysKevent+"/burst", fmt.Sprintf("flood 1 %d", burst)) }()
	var seq int64
	e2e.Eventually(t, "the burst starts", func() bool {
		b, err := os.ReadFile(sysKevent + "/stats")
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "seq "); ok {
				seq, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		return seq > 10000
	}, e2e.Lazy(func() string { return fmt.Sprint("seq ", seq) }))

	t0 := time.Now()
	err := kevent.remove()
	took := time.Since(t0)
	t.Logf("rmmod during the burst (seq %d when it started): %v after %d ms", seq, err, took.Milliseconds())
	if err != nil {
		t.Fatal(err)
	}
	var burstErr error
	select {
	case burstErr = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the burst write did not return after rmmod")
	}
	t.Logf("burst write: %v", burstErr)
	if !errors.Is(burstErr, unix.ENODEV) {
		t.Errorf("burst write: %v, want ENODEV (stopped by the unload)", burstErr)
	}
	unloaded := dmesgLines(t, "kevent: unloaded", "kevent: genl:", "kevent: classic:")
	if len(unloaded) >= 3 {
		unloaded = unloaded[len(unloaded)-3:]
	}
	for _, line := range unloaded {
		t.Logf("  %s", line)
	}
	if w := dmesgLines(t, "WARNING:", "BUG:", "Oops", "Call Trace"); len(w) > warningsBefore {
		t.Errorf("kernel warning in dmesg:\n%s", strings.Join(w[warningsBefore:], "\n"))
	}
	familyGone(t, "after rmmod")
	// Drain what the socket got: the events before the unload, nothing after.
	n := 0
	for {
		_, err := l.next(quietFor)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, unix.ENOBUFS) {
				t.Errorf("listener: %v", err)
			}
			if errors.Is(err, unix.ENOBUFS) {
				continue
			}
			break
		}
		n++
	}
	if !t.Failed() {
		t.Logf("rmmod took %d ms during a burst with a 1 ms heartbeat; the burst stopped with ENODEV; the joined socket read %d events, then nothing; no kernel warning",
			took.Milliseconds(), n)
	}
}

// helperEnv names the helper a re-executed test binary runs instead of the
// tests.
const helperEnv = "VMTEST_HELPER"

// runHelperMain runs the helper named h and returns the exit status.
func runHelperMain(h string) int {
	switch h {
	case "genl-listen":
		if err := genlListen(os.Args[1]); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		return 0
	case "seccomp-getppid":
		return seccompGetppid()
	default:
		fmt.Printf("error: unknown helper %q\n", h)
		return 2
	}
}

// genlListen resolves the kevent family, joins its group, prints "joined",
// and prints the first event named name it receives.
func genlListen(name string) error {
	f, err := genlFamily(decoder.KeventGenlFamily)
	if err != nil {
		return fmt.Errorf("CTRL_CMD_GETFAMILY %q: %w", decoder.KeventGenlFamily, err)
	}
	id, ok := groupID(f, decoder.KeventGenlGroup)
	if !ok {
		return fmt.Errorf("no group %q in %v", decoder.KeventGenlGroup, f.Groups)
	}
	c, err := netlink.Dial(unix.NETLINK_GENERIC, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.JoinGroup(id); err != nil {
		return fmt.Errorf("joining group %d: %w", id, err)
	}
	fmt.Printf("joined family %d group %d as uid %d\n", f.ID, id, os.Getuid())
	l := &listener{what: "helper", c: c, genl: true}
	for {
		ev, err := l.next(10 * time.Second)
		if err != nil {
			return err
		}
		if ev.Name == name {
			fmt.Printf("received %s\n", ev)
			return nil
		}
	}
}

// TestGenlUnprivileged: a process of uid/gid 65534 with no capabilities
// resolves the family, joins the group "events" and receives an event.
func TestGenlUnprivileged(t *testing.T) {
	kevent := useModule(t, "kevent")
	kevent.load(t, "heartbeat_ms=0")

	cmd := exec.Command(os.Args[0], "unpriv")
	cmd.Env = append(os.Environ(), helperEnv+"=genl-listen")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the helper ended without a word")
			}
			return l
		case <-time.After(15 * time.Second):
			t.Fatal("no word from the helper")
		}
		return ""
	}
	joined := next()
	t.Logf("helper (pid %d, uid/gid 65534): %s", cmd.Process.Pid, joined)
	if !strings.HasPrefix(joined, "joined ") {
		t.Fatalf("helper: %s", joined)
	}
	st := procStatus(t, cmd.Process.Pid)
	t.Logf("  Uid %s, Gid %s, CapEff %s", st["Uid"], st["Gid"], st["CapEff"])
	emit(t, "unpriv 65534 nobody")
	got := next()
	t.Logf("helper: %s", got)
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}
	if !strings.HasPrefix(got, "received ") || !strings.Contains(got, "unpriv=65534 payload \"nobody\"") {
		t.Errorf("helper: %s, want the unpriv event", got)
	}
	if st["Uid"] != "65534 65534 65534 65534" || st["CapEff"] != "0000000000000000" {
		t.Errorf("the helper ran with Uid %s CapEff %s", st["Uid"], st["CapEff"])
	}
}
