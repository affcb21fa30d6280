package netlinksrc

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// ctrlBufferSize holds any notification of the controller: the kernel
// builds them in NLMSG_DEFAULT_SIZE, less than a page of 64 KiB.
const ctrlBufferSize = 64 << 10

// errNotesLost says that controller notifications were lost: its socket's
// queue overflowed (ENOBUFS), or one could not be read whole. What the
// subscription knows of its family is then stale.
var errNotesLost = errors.New("generic netlink controller notifications lost")

// A controller is the generic netlink controller (nlctrl) as a family
// subscription uses it: one lookup when it starts, then the notifications
// of the controller's "notify" group, which announce families and their
// multicast groups as they come and go.
type controller interface {
	// GetFamily looks a family up; an absent family's error wraps ENOENT.
	GetFamily(name string) (genetlink.Family, error)
	// Receive returns the notifications of the next datagram on the notify
	// group and its sender's port ID (0 is the kernel; a datagram from
	// another sender comes without its notifications). Unless block is
	// set, it returns an error wrapping EAGAIN when none is queued. An
	// error wrapping errNotesLost says that notifications were lost.
	Receive(block bool) (portID uint32, msgs []genetlink.Message, err error)
	// SetReadDeadline makes a blocked Receive return.
	SetReadDeadline(t time.Time) error
	Close() error
}

// genlController is the kernel's controller, over two sockets: one joined
// to the notify group, which must not see the lookup's reply, and one for
// the lookup.
type genlController struct {
	notify, query *genetlink.Conn
	rc            syscall.RawConn
}

// dialController joins the controller's notify group before anything is
// looked up, so that a family registered between the lookup and the join
// cannot go unnoticed.
func dialController() (controller, error) {
	notify, err := genetlink.Dial(nil)
	if err != nil {
		return nil, err
	}
	query, err := genetlink.Dial(nil)
	if err != nil {
		notify.Close()
		return nil, err
	}
	ctrl, err := query.GetFamily("nlctrl")
	if err == nil {
		err = errors.New(`nlctrl has no "notify" group`)
		for _, g := range ctrl.Groups {
			if g.Name == "notify" {
				err = notify.JoinGroup(g.ID)
				break
			}
		}
	}
	var rc syscall.RawConn
	if err == nil {
		rc, err = notify.SyscallConn()
	}
	if err != nil {
		notify.Close()
		query.Close()
		return nil, fmt.Errorf("joining the generic netlink controller's notify group: %w", err)
	}
	return &genlController{notify: notify, query: query, rc: rc}, nil
}

func (c *genlController) GetFamily(name string) (genetlink.Family, error) {
	return c.query.GetFamily(name)
}

// Receive reads the socket itself: the library's Receive does not say who
// sent a datagram.
func (c *genlController) Receive(block bool) (uint32, []genetlink.Message, error) {
	var (
		n    int
		from unix.Sockaddr
		rerr error
		// buf is borrowed once there is something to read: a family
		// source waits on its controller socket all its life, and 64 KiB
		// each would be most of an idle source's memory.
		buf *[]byte
	)
	defer func() {
		if buf != nil {
			ctrlBuffers.Put(buf)
		}
	}()
	recv := func(fd uintptr) bool {
		if buf == nil {
			buf = ctrlBuffers.Get().(*[]byte)
		}
		for {
			n, from, rerr = unix.Recvfrom(int(fd), *buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
			if rerr != unix.EINTR {
				break
			}
		}
		if block && rerr == unix.EAGAIN {
			ctrlBuffers.Put(buf)
			buf = nil
			return false
		}
		return true
	}
	var err error
	if block {
		err = c.rc.Read(recv)
	} else {
		err = c.rc.Control(func(fd uintptr) { recv(fd) })
	}
	switch {
	case err != nil:
		return 0, nil, err
	case rerr == unix.ENOBUFS:
		return 0, nil, fmt.Errorf("%w: %w", errNotesLost, rerr)
	case rerr != nil:
		return 0, nil, rerr
	}
	sa, ok := from.(*unix.SockaddrNetlink)
	if !ok {
		// No address: nothing says it came from the kernel.
		return ^uint32(0), nil, nil
	}
	if sa.Pid != 0 {
		return sa.Pid, nil, nil
	}
	if n > len(*buf) {
		return 0, nil, fmt.Errorf("%w: a notification of %d bytes did not fit %d", errNotesLost, n, len(*buf))
	}
	// parseNotes copies what it keeps: the buffer goes back.
	msgs, err := parseNotes((*buf)[:n])
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errNotesLost, err)
	}
	return 0, msgs, nil
}

// ctrlBuffers are the controllers' receive buffers, lent for one read.
var ctrlBuffers = sync.Pool{New: func() any {
	b := make([]byte, ctrlBufferSize)
	return &b
}}

func (c *genlController) SetReadDeadline(t time.Time) error { return c.notify.SetReadDeadline(t) }

func (c *genlController) Close() error {
	c.query.Close()
	return c.notify.Close()
}

// parseNotes returns the controller's messages in a datagram, with copies
// of their payloads.
func parseNotes(b []byte) ([]genetlink.Message, error) {
	var msgs []genetlink.Message
	err := decoder.Messages(b, func(typ uint16, payload []byte) error {
		if typ != unix.GENL_ID_CTRL {
			return nil
		}
		var m genetlink.Message
		if err := m.UnmarshalBinary(bytes.Clone(payload)); err != nil {
			return err
		}
		msgs = append(msgs, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}
