package decoder

import "golang.org/x/sys/unix"

// interfaceName returns the name of the interface with index i in the
// process's network namespace (SIOCGIFNAME), if there is one.
func interfaceName(i uint32) ([]byte, bool) {
	// A socket for the ioctl, for this lookup only: a decoder has no
	// Close, and a reload replaces it.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return nil, false
	}
	ifr.SetUint32(i)
	if unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr) != nil {
		return nil, false
	}
	return []byte(ifr.Name()), true
}
