package decoder

import (
	"bytes"
	"encoding/binary"
)

// libudev re-broadcasts start with this prefix and a header
// (struct udev_monitor_netlink_header in systemd's libudev).
var libudevPrefix = []byte("libudev\x00")

const (
	libudevMagic     = 0xfeedcafe
	libudevHeaderLen = 40
)

// Uevent decodes kobject uevents. The kernel sends them without a netlink
// header, as "ACTION@DEVPATH\0KEY=VALUE\0...". udev re-broadcasts them on
// group 2 with a binary libudev header in front; those are decoded too.
//
// The event name is "SUBSYSTEM/ACTION", the payload DEVPATH and the value
// the kernel's SEQNUM. The object is the device's name, the last element
// of DEVPATH ("sda1" for /devices/.../block/sda/sda1), but for the kobjects
// of a network interface, which are the interface's
// (/devices/virtual/net/veth1/queues/rx-0 is about veth1), so that one
// object filter covers an interface and its queues. ACTION=remove of a
// device says it is gone (Event.Gone), and ACTION=move the device's former
// name (DEVPATH_OLD): a renamed interface.
//
// Names are built in the decoder's own memory, appended one after another
// while the caller appends events, so that every event of a batch keeps its
// name; a call with an empty events slice starts a new batch and reuses
// that memory.
type Uevent struct {
	faults
	names []byte
}

// NewUevent returns a uevent decoder.
func NewUevent() *Uevent {
	return &Uevent{}
}

func (d *Uevent) diagnose(datagram []byte) []Problem {
	n := NewUevent()
	n.diag = &diagnosis{datagram: datagram}
	n.Decode(nil, datagram)
	return n.diag.problems
}

// Decode implements Decoder. A datagram carries one uevent.
func (d *Uevent) Decode(events []Event, datagram []byte) ([]Event, int) {
	props, at, ok := ueventProperties(datagram, d.diag)
	if !ok {
		return events, 1
	}
	var action, subsystem, devpath, devpathOld, seqnum []byte
	for len(props) > 0 {
		var kv []byte
		if i := bytes.IndexByte(props, 0); i >= 0 {
			kv, props = props[:i], props[i+1:]
		} else {
			kv, props = props, nil
		}
		eq := bytes.IndexByte(kv, '=')
		if eq <= 0 {
			continue
		}
		switch k, v := kv[:eq], kv[eq+1:]; string(k) {
		case "ACTION":
			action = v
		case "SUBSYSTEM":
			subsystem = v
		case "DEVPATH":
			devpath = v
		case "DEVPATH_OLD":
			devpathOld = v
		case "SEQNUM":
			seqnum = v
		}
	}
	if len(action) == 0 || len(subsystem) == 0 {
		d.diag.add(at, ueventMissing(action, subsystem))
		return events, 1
	}
	if len(events) == 0 {
		d.names = d.names[:0]
	}
	start := len(d.names)
	d.names = append(append(append(d.names, subsystem...), '/'), action...)
	ev := Event{Name: d.names[start:len(d.names):len(d.names)], Payload: devpath}
	ev.Value, ev.HasValue = parseNumber(seqnum)
	var own bool
	ev.Object, own = ueventObject(devpath)
	switch string(action) {
	case "remove":
		if own {
			ev.Gone = ev.Object
		}
	case "move":
		if old, own := ueventObject(devpathOld); own && !bytes.Equal(old, ev.Object) {
			ev.Gone = old
		}
	}
	return append(events, ev), 0
}

// ueventObject returns the object of a uevent about the kobject at devpath,
// and whether it is the kobject's own name rather than its interface's.
func ueventObject(devpath []byte) (object []byte, own bool) {
	if i := bytes.Index(devpath, []byte("/net/")); i >= 0 {
		name := devpath[i+len("/net/"):]
		j := bytes.IndexByte(name, '/')
		if j < 0 {
			return name, len(name) > 0
		}
		if j > 0 {
			return name[:j], false
		}
	}
	object = devpath[bytes.LastIndexByte(devpath, '/')+1:]
	return object, len(object) > 0
}

// ueventProperties returns the KEY=VALUE list of a kernel or libudev
// uevent and where it starts, or records why there is none in diag.
func ueventProperties(b []byte, diag *diagnosis) ([]byte, int, bool) {
	if bytes.HasPrefix(b, libudevPrefix) {
		if len(b) < libudevHeaderLen {
			diag.add(0, faultf("libudev message of %d bytes, shorter than its header (%d bytes)", len(b), libudevHeaderLen))
			return nil, 0, false
		}
		if magic := binary.BigEndian.Uint32(b[8:12]); magic != libudevMagic {
			diag.add(8, faultf("libudev magic %#x, want %#x", int(magic), libudevMagic))
			return nil, 0, false
		}
		off := int(binary.NativeEndian.Uint32(b[16:20]))
		n := int(binary.NativeEndian.Uint32(b[20:24]))
		if off < libudevHeaderLen || n < 0 || off > len(b) || n > len(b)-off {
			diag.add(16, faultf("libudev properties of %d bytes at byte %d lie outside the message's %d bytes after its header",
				n, off, len(b)-libudevHeaderLen))
			return nil, 0, false
		}
		return b[off : off+n], off, true
	}
	// The kernel's summary line "ACTION@DEVPATH" comes first.
	end := bytes.IndexByte(b, 0)
	if end < 0 {
		diag.add(0, faultf("no NUL-terminated ACTION@DEVPATH line: %s").quoting(b))
		return nil, 0, false
	}
	if bytes.IndexByte(b[:end], '@') <= 0 {
		diag.add(0, faultf("first line %s is not ACTION@DEVPATH").quoting(b[:end]))
		return nil, 0, false
	}
	return b[end+1:], end + 1, true
}

// ueventMissing is the fault of a uevent without an ACTION or SUBSYSTEM.
func ueventMissing(action, subsystem []byte) fault {
	switch {
	case len(action) == 0 && len(subsystem) == 0:
		return faultf("no ACTION and no SUBSYSTEM property (or both empty)")
	case len(action) == 0:
		return faultf("no ACTION property (or it is empty)")
	}
	return faultf("no SUBSYSTEM property (or it is empty)")
}
