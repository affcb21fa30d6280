package decoder_test

import (
	"fmt"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// ExampleMessages frames a datagram of two messages, the second cut short.
func ExampleMessages() {
	datagram := nlsend.AppendMessage(nil, 0x10, 1, []byte("abc"))
	datagram = nlsend.AppendMessage(datagram, 0x11, 2, []byte("defgh"))
	err := decoder.Messages(datagram[:len(datagram)-6], func(typ uint16, payload []byte) error {
		fmt.Printf("type %#x payload %q\n", typ, payload)
		return nil
	})
	fmt.Println(err)
	// Output:
	// type 0x10 payload "abc"
	// message length 21 runs past the end of the datagram (18 bytes left)
}
