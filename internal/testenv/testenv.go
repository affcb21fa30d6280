// Package testenv gives a package's tests a network namespace of their own,
// so that netlink traffic elsewhere on the machine (udev, a second test run,
// another package's tests) cannot reach the sockets they count on.
//
// A package uses it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// As root, Main re-executes the test binary in new network and mount
// namespaces, with a sysfs of the new network namespace mounted on /sys
// (so that /sys/class/net/lo is the namespace's own loopback) and lo up.
// Multicast on NETLINK_USERSOCK, uevents of the namespace's devices and
// /proc/net/netlink are then private to that one process tree.
//
// JoinAsNobody and JoinFamilyAsNobody probe what the kernel lets an
// unprivileged process join, for tests whose outcome depends on it.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	// isolatedEnv marks the re-executed test binary.
	isolatedEnv = "KEVENT_TESTENV_ISOLATED"
	// strictEnv, when set (.ci/run sets it), turns a missing privilege
	// from a skip into a failure, so that CI cannot pass by skipping.
	strictEnv = "KEVENT_TEST_STRICT"
)

// Isolated reports whether the tests run in a network namespace of their
// own.
func Isolated() bool { return os.Getenv(isolatedEnv) == "1" }

// Main runs the package's tests in a private network namespace when it can
// (as root) and exits with their status. Without root the tests run where
// they are, and those that need root skip (see RequireRoot). Each setup
// runs once before the tests, where they run, and its cleanup after them.
func Main(m *testing.M, setup ...func() (cleanup func(), err error)) {
	if os.Geteuid() == 0 && !Isolated() {
		os.Exit(reexec())
	}
	if Isolated() {
		if err := setUp(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: setting up the private namespace: %v\n", err)
			os.Exit(1)
		}
	}
	var cleanups []func()
	for _, f := range setup {
		cleanup, err := f()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cleanups = append(cleanups, cleanup)
	}
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}

// reexec runs this test binary again, with the same arguments, in new
// network and mount namespaces, and returns its exit status.
func reexec() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), isolatedEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNET | unix.CLONE_NEWNS,
	}
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "testenv: running the tests in a new network namespace: %v\n", err)
		return 1
	}
}

// setUp makes the new namespaces usable: mounts stay private to this
// process tree, /sys shows this network namespace's devices, and lo is up.
func setUp() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting sysfs: %w", err)
	}
	return LinkUp("lo")
}

// LinkUp sets the network interface name up.
func LinkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading %s's flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	return nil
}

// InNetns runs f on an OS thread in the network namespace at path (such as
// /proc/PID/ns/net): sockets f opens, and processes it starts, are made
// there. The thread is never unlocked: it ends with its goroutine rather
// than take the namespace to other goroutines.
func InNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering %s: %w", path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// RequireRoot skips the test, saying why, unless it runs as root in a
// private network namespace. Under KEVENT_TEST_STRICT=1 it fails instead.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 && Isolated() {
		return
	}
	msg := "needs root (and a private network namespace, which testenv.Main makes as root): " + why
	if os.Getenv(strictEnv) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// WriteUevent makes the kernel emit a uevent for the network device name
// of the test's namespace, as udev's "udevadm trigger" does.
func WriteUevent(name, action string) error {
	if name == "" || strings.ContainsAny(name, "/.") {
		return fmt.Errorf("bad interface name %q", name)
	}
	return os.WriteFile("/sys/class/net/"+name+"/uevent", []byte(action), 0o200)
}

// HostNetns returns a path to the network namespace the tests were started
// in (the one Main left), for the rare test that must run something there:
// the parent test process, which re-executed the tests, stays in it.
func HostNetns() string {
	return fmt.Sprintf("/proc/%d/ns/net", os.Getppid())
}
