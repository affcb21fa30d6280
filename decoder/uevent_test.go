package decoder_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// loProps are the properties of the kernel's uevent for a change of lo.
const loProps = "ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00SUBSYSTEM=net\x00" +
	"INTERFACE=lo\x00IFINDEX=1\x00SEQNUM=4242\x00"

// loUevent is the kernel's uevent for a change of lo, as it arrives on
// NETLINK_KOBJECT_UEVENT group 1: a summary line, then the properties.
const loUevent = "change@/devices/virtual/net/lo\x00" + loProps

// loEvent is the event decoded from loUevent.
var loEvent = event{Name: "net/change", Object: "lo", Payload: "/devices/virtual/net/lo", Value: 4242, HasValue: true}

// libudevHeader returns the 40-byte struct udev_monitor_netlink_header of a
// libudev re-broadcast, as nlsend.AppendLibudev lays it out, with magic (big
// endian) and the properties' offset and length (native endian) set. It
// builds re-broadcasts that nlsend.AppendLibudev does not: malformed ones and
// one whose properties do not follow the header at once.
func libudevHeader(magic, propertiesOff, propertiesLen uint32) []byte {
	b := nlsend.AppendLibudev(nil, "")
	binary.BigEndian.PutUint32(b[8:12], magic)
	binary.NativeEndian.PutUint32(b[16:20], propertiesOff)
	binary.NativeEndian.PutUint32(b[20:24], propertiesLen)
	return b
}

var ueventTests = []struct {
	name     string
	datagram []byte
	want     []event
	bad      int
}{
	{
		name:     "kernel",
		datagram: []byte(loUevent),
		want:     []event{loEvent},
	},
	{
		name:     "kernel without trailing NUL",
		datagram: []byte(loUevent[:len(loUevent)-1]),
		want:     []event{loEvent},
	},
	{
		name:     "kernel without SEQNUM",
		datagram: []byte("add@/devices/virtual/block/loop0\x00ACTION=add\x00DEVPATH=/devices/virtual/block/loop0\x00SUBSYSTEM=block\x00"),
		want:     []event{{Name: "block/add", Object: "loop0", Payload: "/devices/virtual/block/loop0"}},
	},
	{
		name:     "a partition",
		datagram: []byte("add@/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1\x00SUBSYSTEM=block\x00SEQNUM=9\x00"),
		want:     []event{{Name: "block/add", Object: "sda1", Payload: "/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1", Value: 9, HasValue: true}},
	},
	{
		name:     "an interface's queue is the interface's, and its removal is not the interface's",
		datagram: []byte("remove@/devices/virtual/net/veth1/queues/rx-0\x00ACTION=remove\x00DEVPATH=/devices/virtual/net/veth1/queues/rx-0\x00SUBSYSTEM=queues\x00SEQNUM=10\x00"),
		want:     []event{{Name: "queues/remove", Object: "veth1", Payload: "/devices/virtual/net/veth1/queues/rx-0", Value: 10, HasValue: true}},
	},
	{
		name:     "an interface removed",
		datagram: []byte("remove@/devices/virtual/net/veth1\x00ACTION=remove\x00DEVPATH=/devices/virtual/net/veth1\x00SUBSYSTEM=net\x00INTERFACE=veth1\x00IFINDEX=7\x00SEQNUM=11\x00"),
		want:     []event{{Name: "net/remove", Object: "veth1", Gone: "veth1", Payload: "/devices/virtual/net/veth1", Value: 11, HasValue: true}},
	},
	{
		name:     "an interface renamed",
		datagram: []byte("move@/devices/pci0000:00/0000:00:03.0/net/eth0\x00ACTION=move\x00DEVPATH=/devices/pci0000:00/0000:00:03.0/net/eth0\x00SUBSYSTEM=net\x00DEVPATH_OLD=/devices/pci0000:00/0000:00:03.0/net/n1\x00SEQNUM=12\x00"),
		want:     []event{{Name: "net/move", Object: "eth0", Gone: "n1", Payload: "/devices/pci0000:00/0000:00:03.0/net/eth0", Value: 12, HasValue: true}},
	},
	{
		name:     "a device moved under another parent, same name",
		datagram: []byte("move@/devices/b/x\x00ACTION=move\x00DEVPATH=/devices/b/x\x00SUBSYSTEM=s\x00DEVPATH_OLD=/devices/a/x\x00"),
		want:     []event{{Name: "s/move", Object: "x", Payload: "/devices/b/x"}},
	},
	{
		name:     "odd paths: a trailing slash, an empty interface name",
		datagram: []byte("remove@/devices/x/\x00ACTION=remove\x00DEVPATH=/devices/net//y/\x00SUBSYSTEM=s\x00"),
		want:     []event{{Name: "s/remove", Payload: "/devices/net//y/"}},
	},
	{
		name:     "kernel without DEVPATH",
		datagram: []byte("add@/module/loop\x00ACTION=add\x00SUBSYSTEM=module\x00SEQNUM=7\x00"),
		want:     []event{{Name: "module/add", Value: 7, HasValue: true}},
	},
	{
		name:     "kernel with malformed properties",
		datagram: []byte("change@/devices/virtual/net/lo\x00junk\x00=x\x00\x00" + loProps),
		want:     []event{loEvent},
	},
	{
		name:     "kernel without SUBSYSTEM",
		datagram: []byte("change@/devices/virtual/net/lo\x00ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00SEQNUM=1\x00"),
		bad:      1,
	},
	{
		name:     "kernel without ACTION",
		datagram: []byte("change@/devices/virtual/net/lo\x00DEVPATH=/devices/virtual/net/lo\x00SUBSYSTEM=net\x00SEQNUM=1\x00"),
		bad:      1,
	},
	{
		name:     "kernel with empty ACTION",
		datagram: []byte("change@/devices/virtual/net/lo\x00ACTION=\x00SUBSYSTEM=net\x00"),
		bad:      1,
	},
	{
		name:     "summary without @",
		datagram: []byte("change/devices/virtual/net/lo\x00" + loProps),
		bad:      1,
	},
	{
		name:     "summary with empty action",
		datagram: []byte("@/devices/virtual/net/lo\x00" + loProps),
		bad:      1,
	},
	{
		name:     "summary only",
		datagram: []byte("change@/devices/virtual/net/lo"),
		bad:      1,
	},
	{
		// An empty datagram counts as one malformed uevent, unlike the
		// netlink decoders, which find no message in it.
		name:     "empty datagram",
		datagram: []byte{},
		bad:      1,
	},
	{
		name:     "garbage",
		datagram: []byte("\x01\x02\x03\xff@\x00\xfe=\x00"),
		bad:      1,
	},
	{
		name:     "netlink message",
		datagram: seedDatagram,
		bad:      1,
	},
	{
		name:     "libudev",
		datagram: nlsend.AppendLibudev(nil, loProps),
		want:     []event{loEvent},
	},
	{
		name: "libudev with properties after a gap",
		datagram: concat(
			libudevHeader(0xfeedcafe, 48, uint32(len(loProps))),
			[]byte("ACTION=x"), // 8 bytes outside the properties
			[]byte(loProps),
		),
		want: []event{loEvent},
	},
	{
		name:     "libudev properties length excludes trailing data",
		datagram: concat(nlsend.AppendLibudev(nil, loProps), []byte("SUBSYSTEM=bad\x00")),
		want:     []event{loEvent},
	},
	{
		name:     "libudev without SUBSYSTEM",
		datagram: nlsend.AppendLibudev(nil, "ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00"),
		bad:      1,
	},
	{
		name:     "libudev bad magic",
		datagram: concat(libudevHeader(0xcafefeed, 40, uint32(len(loProps))), []byte(loProps)),
		bad:      1,
	},
	{
		name:     "libudev properties offset inside header",
		datagram: concat(libudevHeader(0xfeedcafe, 24, uint32(len(loProps))), []byte(loProps)),
		bad:      1,
	},
	{
		name:     "libudev properties offset past end",
		datagram: concat(libudevHeader(0xfeedcafe, 40+uint32(len(loProps))+1, 0), []byte(loProps)),
		bad:      1,
	},
	{
		name:     "libudev properties length past end",
		datagram: concat(libudevHeader(0xfeedcafe, 40, uint32(len(loProps))+1), []byte(loProps)),
		bad:      1,
	},
	{
		name:     "libudev huge properties offset and length",
		datagram: concat(libudevHeader(0xfeedcafe, 0xffffffff, 0xffffffff), []byte(loProps)),
		bad:      1,
	},
	{
		name:     "libudev short header",
		datagram: libudevHeader(0xfeedcafe, 40, 0)[:39],
		bad:      1,
	},
	{
		name:     "libudev prefix only",
		datagram: []byte("libudev\x00"),
		bad:      1,
	},
}

func TestUeventDecode(t *testing.T) {
	for _, tt := range ueventTests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecode(t, decoder.NewUevent(), tt.datagram, tt.want, tt.bad)
		})
	}
}

// TestUeventBatch decodes several datagrams into one events slice, as the
// receive loop does with a batch: every event keeps its own name, although
// uevent names are built in the decoder's memory.
func TestUeventBatch(t *testing.T) {
	d := decoder.NewUevent()
	datagrams := []struct {
		datagram []byte
		want     string
	}{
		{datagram: []byte(loUevent), want: "net/change"},
		{datagram: []byte("add@/devices/virtual/block/loop0\x00ACTION=add\x00SUBSYSTEM=block\x00"), want: "block/add"},
		{datagram: nlsend.AppendLibudev(nil, "ACTION=remove\x00SUBSYSTEM=usb\x00"), want: "usb/remove"},
		{datagram: []byte("x"), want: ""},
		{datagram: []byte("bind@/devices/pci0000:00\x00ACTION=bind\x00SUBSYSTEM=pci\x00"), want: "pci/bind"},
	}
	for round := 0; round < 2; round++ {
		// A second batch reuses the decoder's memory and is as right.
		var events []decoder.Event
		var want []string
		for _, dg := range datagrams {
			events, _ = d.Decode(events, dg.datagram)
			if dg.want != "" {
				want = append(want, dg.want)
			}
		}
		var got []string
		for _, e := range events {
			got = append(got, string(e.Name))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round %d: names of a batch (-want +got):\n%s", round, diff)
		}
	}
}

func FuzzUevent(f *testing.F) {
	for _, tt := range ueventTests {
		f.Add(tt.datagram)
	}

	d := decoder.NewUevent()
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := d.Decode(nil, datagram)
		if bad < 0 {
			t.Fatalf("negative malformed count %d", bad)
		}
		if n := len(events) + bad; n != 1 {
			t.Fatalf("%d events and %d malformed from one datagram, want 1 in all", len(events), bad)
		}
		for i, e := range events {
			if len(e.Name) < 3 || !bytes.Contains(e.Name, []byte("/")) {
				t.Fatalf("event %d: name %q is not SUBSYSTEM/ACTION", i, e.Name)
			}
			if !within(datagram, e.Payload) || !within(datagram, e.Object) || !within(datagram, e.Gone) {
				t.Fatalf("event %d: payload %q, object %q or gone %q is not a slice of the datagram", i, e.Payload, e.Object, e.Gone)
			}
			if bytes.Contains(e.Object, []byte("/")) || bytes.Contains(e.Gone, []byte("/")) {
				t.Fatalf("event %d: object %q or gone %q has a /", i, e.Object, e.Gone)
			}
		}
	})
}
