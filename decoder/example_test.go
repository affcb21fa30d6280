package decoder_test

import (
	"encoding/binary"
	"fmt"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// message returns a netlink message of type typ with payload, as the
// kernel frames it: a 16-byte header, the payload, padding to 4 bytes.
func message(typ uint16, payload string) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(16+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, 0) // flags
	b = binary.NativeEndian.AppendUint32(b, 1) // sequence number
	b = binary.NativeEndian.AppendUint32(b, 0) // port ID: the kernel
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// New returns a decoder by the name a configuration gives it. Decode
// appends the events of one datagram, here two netlink messages, to a
// slice that the caller reuses from one datagram to the next.
func ExampleNew() {
	d, err := decoder.New("raw", decoder.Options{TypeNames: map[uint16]string{16: "tick"}})
	if err != nil {
		panic(err)
	}
	datagram := append(message(16, "42\x00"), message(17, "hello\x00")...)

	events, malformed := d.Decode(nil, datagram)
	for _, e := range events {
		// A raw event has a value when its payload is a number.
		if e.HasValue {
			fmt.Printf("name=%s value=%v payload=%q\n", e.Name, e.Value, e.Payload)
		} else {
			fmt.Printf("name=%s payload=%q\n", e.Name, e.Payload)
		}
	}
	fmt.Println("malformed:", malformed)
	// Output:
	// name=tick value=42 payload="42"
	// name=17 payload="hello"
	// malformed: 0
}

// A uevent is not a netlink message: the kernel sends "ACTION@DEVPATH"
// and the uevent's properties, each ended by a NUL.
func ExampleNewUevent() {
	d := decoder.NewUevent()
	uevent := "add@/devices/virtual/net/veth1\x00ACTION=add\x00DEVPATH=/devices/virtual/net/veth1\x00SUBSYSTEM=net\x00INTERFACE=veth1\x00SEQNUM=4242\x00"

	events, malformed := d.Decode(nil, []byte(uevent))
	for _, e := range events {
		fmt.Printf("name=%s object=%s value=%v payload=%s\n", e.Name, e.Object, e.Value, e.Payload)
	}
	fmt.Println("malformed:", malformed)
	// Output:
	// name=net/add object=veth1 value=4242 payload=/devices/virtual/net/veth1
	// malformed: 0
}

// Decode only counts malformed messages; Diagnose says what is wrong with
// them, for kevent_exporter monitor.
func ExampleDiagnose() {
	d, err := decoder.New("kevent", decoder.Options{})
	if err != nil {
		panic(err)
	}
	datagram := message(17, "oops")

	_, malformed := d.Decode(nil, datagram)
	fmt.Println("malformed:", malformed)
	for _, p := range decoder.Diagnose(d, datagram) {
		fmt.Println(p)
	}
	// Output:
	// malformed: 1
	// at byte 0: message type 0x11 is not KEVENT_MSG_EVENT (0x10)
}
