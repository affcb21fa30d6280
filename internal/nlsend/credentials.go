package nlsend

import (
	"encoding/binary"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SendAs multicasts one datagram with SCM_CREDENTIALS naming uid and gid,
// as a process of that user would send it. The kernel takes other users'
// credentials only from a sender with CAP_SETUID and CAP_SETGID (root), so
// tests can send as an unprivileged user without leaving the process.
func (s *Sender) SendAs(b []byte, uid, gid uint32) error {
	oob := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uid, Gid: gid})
	iov := unix.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	msg := unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&s.addr)),
		Namelen: uint32(unsafe.Sizeof(s.addr)),
		Iov:     &iov,
		Control: &oob[0],
	}
	msg.SetIovlen(1)
	msg.SetControllen(len(oob))
	_, _, errno := unix.Syscall(unix.SYS_SENDMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msg)), 0)
	if errno != 0 && errno != unix.ECONNREFUSED {
		return errno
	}
	return nil
}

// AppendLibudev appends a udev re-broadcast of the uevent properties props
// ("KEY=VALUE\x00..."): "libudev\0", the magic 0xfeedcafe and the header's
// offsets as systemd's struct udev_monitor_netlink_header lays them out,
// then the properties.
func AppendLibudev(b []byte, props string) []byte {
	const headerLen = 40
	h := make([]byte, headerLen)
	copy(h, "libudev\x00")
	binary.BigEndian.PutUint32(h[8:12], 0xfeedcafe)
	binary.NativeEndian.PutUint32(h[12:16], headerLen)
	binary.NativeEndian.PutUint32(h[16:20], headerLen)
	binary.NativeEndian.PutUint32(h[20:24], uint32(len(props)))
	return append(append(b, h...), props...)
}
