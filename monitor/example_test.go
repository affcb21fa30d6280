package monitor_test

import (
	"fmt"
	"os"
	"time"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/monitor"
)

// exampleTime is when the examples' events arrived.
var exampleTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// An Encoder appends the line of an event: in text, the time, the source
// and the event's fields.
func ExampleEncoder() {
	e := monitor.NewEncoder(monitor.Text, "kevent")
	ev := decoder.Event{
		Name: []byte("link/down"), Object: []byte("eth0"), Value: 2, HasValue: true,
		Payload: []byte("carrier lost"), HasSeq: true, Seq: 41, Instance: 7,
	}
	os.Stdout.Write(e.AppendEvent(nil, exampleTime, &ev))
	// Output:
	// 2024-05-06T07:08:09.123456Z kevent link/down object=eth0 value=2 payload="carrier lost" seq=41 instance=7
}

// In JSON, each line is an object.
func ExampleEncoder_json() {
	e := monitor.NewEncoder(monitor.JSON, "kevent")
	ev := decoder.Event{Name: []byte("link/down"), Object: []byte("eth0"), Payload: []byte("bye\xff")}
	os.Stdout.Write(e.AppendEvent(nil, exampleTime, &ev))
	// Output:
	// {"time":"2024-05-06T07:08:09.123456789Z","source":"kevent","event":"link/down","object":"eth0","payload":"bye\ufffd","payload_base64":"Ynll/w=="}
}

// A notice, which says what the monitor detected rather than what the
// source sent, starts with AppendNotice, takes fields, and ends with
// EndNotice. In text, its kind follows a '!'.
func ExampleEncoder_AppendNotice() {
	for _, f := range []monitor.Format{monitor.Text, monitor.JSON} {
		e := monitor.NewEncoder(f, "kevent")
		b := e.AppendNotice(nil, exampleTime, "gap")
		b = e.AppendUint(b, "instance", 7)
		b = e.AppendUint(b, "missing", 2)
		b = e.AppendUint32s(b, "groups", []uint32{1, 3})
		os.Stdout.Write(e.EndNotice(b))
	}
	// Output:
	// 2024-05-06T07:08:09.123456Z kevent !gap instance=7 missing=2 groups=1,3
	// {"time":"2024-05-06T07:08:09.123456789Z","source":"kevent","notice":"gap","instance":7,"missing":2,"groups":[1,3]}
}

// A decode error's notice ends with why the datagram did not decode, as
// decoder.Diagnose says, and a hex dump of its start.
func ExampleEncoder_EndDecodeError() {
	d, err := decoder.New("kevent", decoder.Options{})
	if err != nil {
		panic(err)
	}
	// A netlink message header of type 0x11.
	datagram := []byte{0x10, 0, 0, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	e := monitor.NewEncoder(monitor.Text, "kevent")
	b := e.AppendNotice(nil, exampleTime, "decode_error")
	b = e.AppendUint(b, "bytes", uint64(len(datagram)))
	b = e.EndDecodeError(b, decoder.Diagnose(d, datagram), datagram)
	os.Stdout.Write(b)
	// Output:
	// 2024-05-06T07:08:09.123456Z kevent !decode_error bytes=16
	//   at byte 0: message type 0x11 is not KEVENT_MSG_EVENT (0x10)
	//   00000000  10 00 00 00 11 00 00 00  00 00 00 00 00 00 00 00  |................|
}

// Main runs the command with the arguments that follow "monitor" on the
// command line. A command line it cannot run is exit status 2.
func ExampleMain() {
	status := monitor.Main("kevent_exporter", []string{"--protocol=usersock", "--groups=1"}, os.Stdout, os.Stdout)
	fmt.Println("exit status", status)
	// Output:
	// kevent_exporter monitor: --protocol needs --groups and --decoder
	// exit status 2
}
