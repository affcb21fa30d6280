package decoder

import "encoding/binary"

// The kernel's ACPI event family. No uapi header defines it: these are
// from drivers/acpi/event.c of Linux 6.1 (and as they were in 4.x), whose
// struct acpi_genl_event is
//
//	struct acpi_genl_event {
//		acpi_device_class device_class;	/* char [20], include/acpi/acpi_bus.h */
//		char bus_id[15];
//		u32 type;
//		u32 data;
//	};
//
// in native byte order, with one byte of padding before type. A test
// checks the layout, and these against the kernel's source where it finds
// one. The family exists in the initial network namespace only.
const (
	// ACPIGenlFamily is the family's name (ACPI_GENL_FAMILY_NAME).
	ACPIGenlFamily = "acpi_event"
	// ACPIGenlGroup is its one multicast group
	// (ACPI_GENL_MCAST_GROUP_NAME).
	ACPIGenlGroup = "acpi_mc_group"
	// ACPIGenlVersion is the family's version (ACPI_GENL_VERSION).
	ACPIGenlVersion = 1
	// ACPICmdEvent is the command of every message (ACPI_GENL_CMD_EVENT).
	ACPICmdEvent = 1
	// ACPIAttrEvent is the attribute holding a struct acpi_genl_event
	// (ACPI_GENL_ATTR_EVENT).
	ACPIAttrEvent = 1

	// ACPIDeviceClassLen is the size of device_class, the NUL included.
	ACPIDeviceClassLen = 20
	// ACPIBusIDLen is the size of bus_id, the NUL included.
	ACPIBusIDLen = 15
	// ACPIEventTypeOffset and ACPIEventDataOffset are where type and data
	// are, after the padding that aligns them.
	ACPIEventTypeOffset = 36
	ACPIEventDataOffset = 40
	// ACPIEventLen is the size of struct acpi_genl_event.
	ACPIEventLen = 44
)

// ACPI decodes the kernel's ACPI events, the ones acpid reads: the device
// class is the event's name, the bus id its object, the type its value
// and the data, in hex, its payload. A power button press is
//
//	button/power  LNXPWRBN:00  value 128 (0x80, a notification)  payload 0x00000001 (the presses so far)
//
// and others come from batteries (battery PNP0C0A:00), AC adapters
// (ac_adapter ACPI0003:00), video (video/brightnessup), thermal zones and
// processors, as their drivers send them. A message without the event
// attribute, or whose device class is empty or lacks its NUL, is
// malformed.
//
// Payloads are built in the decoder's own memory (see Genl).
type ACPI struct {
	faults
	buf []byte
}

// NewACPI returns an ACPI event decoder.
func NewACPI() *ACPI {
	return &ACPI{}
}

// Decode implements Decoder.
func (d *ACPI) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return decodeMessages(events, datagram, d)
}

func (d *ACPI) diagnose(datagram []byte) []Problem {
	return diagnoseEach(datagram, NewACPI())
}

// acpiAttrNames names the family's one attribute.
var acpiAttrNames = attrNames{ACPIAttrEvent: "ACPI_GENL_ATTR_EVENT"}

func (d *ACPI) decodeMessage(ev *Event, m message) bool {
	cmd, ok := d.genlCommand(m)
	if !ok {
		return false
	}
	if cmd != ACPICmdEvent {
		return d.fail(m, faultf("generic netlink command %d is not ACPI_GENL_CMD_EVENT (%d)", int(cmd), ACPICmdEvent))
	}
	// The kernel sends one event attribute; of several, the last
	// counts.
	var e []byte
	var ad attrDecoder
	d.attrs(&ad, m, genlHeaderLen, acpiAttrNames)
	for typ, v := range ad.All {
		if typ&nlaTypeMask == ACPIAttrEvent {
			e = v
		}
	}
	if ad.Failed() {
		return d.fail(m, ad.Err())
	}
	if e == nil {
		return d.fail(m, attrFaultf(acpiAttrNames, ACPIAttrEvent, "no attribute %s"))
	}
	if len(e) < ACPIEventLen {
		return d.fail(m, ad.Faultf(e, "attribute %s at byte %d carries %d bytes, want at least %d (struct acpi_genl_event)", len(e), ACPIEventLen))
	}
	class, ok := cField(e[:ACPIDeviceClassLen])
	if !ok || len(class) == 0 {
		return d.fail(m, ad.Faultf(e, "attribute %s at byte %d: device_class is empty or lacks its NUL"))
	}
	busID, ok := cField(e[ACPIDeviceClassLen : ACPIDeviceClassLen+ACPIBusIDLen])
	if !ok {
		return d.fail(m, ad.Faultf(e, "attribute %s at byte %d: bus_id lacks its NUL"))
	}
	ev.Name, ev.Object = class, busID
	ev.Value = float64(binary.NativeEndian.Uint32(e[ACPIEventTypeOffset:]))
	ev.HasValue = true
	start := len(d.buf)
	d.buf = appendHex32(d.buf, binary.NativeEndian.Uint32(e[ACPIEventDataOffset:]))
	ev.Payload = d.buf[start:len(d.buf):len(d.buf)]
	return true
}

// cField returns a fixed-size C string field up to its NUL, and whether it
// has one.
func cField(b []byte) ([]byte, bool) {
	s := cString(b)
	return s, len(s) < len(b)
}

// appendHex32 appends v as 0x and 8 hex digits, as acpid prints the data.
func appendHex32(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	b = append(b, '0', 'x')
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, digits[v>>uint(shift)&0xf])
	}
	return b
}
