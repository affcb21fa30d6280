// Package nlsend multicasts netlink messages from user space, on
// NETLINK_USERSOCK, for tests and benchmarks: the kernel delivers them to
// every socket bound to the group exactly as it would a module's.
package nlsend

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// Sender multicasts datagrams to one group of a netlink protocol.
type Sender struct {
	fd   int
	addr unix.RawSockaddrNetlink
}

// NewSender opens a socket that sends to group (1-32) of protocol.
func NewSender(protocol int, group uint32) (*Sender, error) {
	if group < 1 || group > 32 {
		return nil, errors.New("nlsend: group must be 1-32")
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Sender{fd: fd, addr: unix.RawSockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (group - 1)}}, nil
}

// Send multicasts one datagram. ECONNREFUSED, which usersock returns
// because no kernel socket takes the unicast copy, means it was delivered.
func (s *Sender) Send(b []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
		uintptr(unsafe.Pointer(&s.addr)), unsafe.Sizeof(s.addr))
	if errno != 0 && errno != unix.ECONNREFUSED {
		return errno
	}
	return nil
}

// Close closes the socket.
func (s *Sender) Close() error {
	return unix.Close(s.fd)
}

// AppendMessage appends a netlink message (struct nlmsghdr and payload,
// padded to 4 bytes) to b.
func AppendMessage(b []byte, typ uint16, seq uint32, payload []byte) []byte {
	l := 16 + len(payload)
	b = binary.NativeEndian.AppendUint32(b, uint32(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, 0)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, payload...)
	return appendPad(b, l)
}

// AppendAttr appends a netlink attribute (struct nlattr and value, padded
// to 4 bytes) to b.
func AppendAttr(b []byte, typ uint16, v []byte) []byte {
	l := 4 + len(v)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	return appendPad(b, l)
}

func appendPad(b []byte, l int) []byte {
	for ; l%4 != 0; l++ {
		b = append(b, 0)
	}
	return b
}

// KeventEvent is an event in the kevent wire format (kmod/kevent_netlink.h).
type KeventEvent struct {
	Seq, Instance, TimestampNS uint64
	Name                       string
	Value                      int64
	Payload                    string
	// Object, if not empty, is sent as KEVENT_A_OBJECT.
	Object string
}

// AppendKevent appends e as a KEVENT_MSG_EVENT message to b, with e.Seq as
// its nlmsg_seq.
func AppendKevent(b []byte, e KeventEvent) []byte {
	return AppendMessage(b, decoder.KeventMsgEvent, uint32(e.Seq), AppendKeventAttrs(nil, e))
}

// AppendKeventAttrs appends e's attributes, the payload of its
// KEVENT_MSG_EVENT message, to b in the order kmod/kevent.c puts them,
// without the KEVENT_A_PAD attributes it adds where 64-bit values need
// aligning. An empty Payload is left out, as the module leaves out a NULL one.
func AppendKeventAttrs(b []byte, e KeventEvent) []byte {
	u64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	b = AppendAttr(b, decoder.KeventAttrSeq, u64(e.Seq))
	b = AppendAttr(b, decoder.KeventAttrInstance, u64(e.Instance))
	b = AppendAttr(b, decoder.KeventAttrTimestampNS, u64(e.TimestampNS))
	b = AppendAttr(b, decoder.KeventAttrName, append([]byte(e.Name), 0))
	b = AppendAttr(b, decoder.KeventAttrValue, u64(uint64(e.Value)))
	if e.Payload != "" {
		b = AppendAttr(b, decoder.KeventAttrPayload, append([]byte(e.Payload), 0))
	}
	if e.Object != "" {
		b = AppendAttr(b, decoder.KeventAttrObject, append([]byte(e.Object), 0))
	}
	return b
}
