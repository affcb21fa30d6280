package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"
)

// Nobody is the user the tests run unprivileged exporters as: uid and gid
// 65534, no supplementary groups, hence no capabilities.
var Nobody = syscall.Credential{Uid: 65534, Gid: 65534}

// probeEnv makes the test binary a probe (see init): what it holds says
// what to try.
const probeEnv = "KEVENT_TESTENV_PROBE"

// ErrNoGroup is JoinFamilyAsNobody's answer for a family that has no group
// of the name.
var ErrNoGroup = errors.New("the family has no such multicast group")

// JoinAsNobody reports whether the kernel lets an unprivileged process
// join multicast group of netlink protocol in the network namespace netns
// (a path such as HostNetns(); empty for the caller's): nil if it does,
// else the kernel's error, such as unix.EPERM where joining needs
// CAP_NET_ADMIN or unix.EPROTONOSUPPORT where the protocol has no kernel
// socket. What unprivileged users may join differs between kernel builds
// (the process events connector's group, for one), and a kernel's version
// does not tell: the test binary is run again as Nobody, in netns, to try
// it, so that a test checks the behaviour that the kernel it runs on
// allows. The test fails if the probe cannot be run.
func JoinAsNobody(t testing.TB, netns string, protocol int, group uint32) error {
	t.Helper()
	return probe(t, netns, fmt.Sprintf("protocol %d %d", protocol, group))
}

// JoinFamilyAsNobody is JoinAsNobody for the multicast group named group
// of the generic netlink family: unix.ENOENT if the kernel has no such
// family, ErrNoGroup if the family has no such group.
func JoinFamilyAsNobody(t testing.TB, netns, family, group string) error {
	t.Helper()
	if strings.ContainsAny(family+group, " \n") || family == "" || group == "" {
		t.Fatalf("probe: bad family %q or group %q", family, group)
	}
	return probe(t, netns, fmt.Sprintf("family %s %s", family, group))
}

// probe runs the test binary as Nobody in netns with probeEnv set to what,
// and returns its answer.
func probe(t testing.TB, netns, what string) error {
	t.Helper()
	// The test binary's directory may be closed to others (go test's
	// is); /proc/self/exe reaches the file all the same.
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), probeEnv+"="+what)
	cred := Nobody
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &cred}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var out []byte
	var err error
	if netns == "" {
		out, err = cmd.Output()
	} else {
		// The child is forked from an OS thread in netns, and born there:
		// as Nobody it could not enter it itself.
		err = InNetns(netns, func() error {
			var err error
			out, err = cmd.Output()
			return err
		})
	}
	answer := strings.TrimSpace(string(out))
	if err != nil {
		t.Fatalf("probe %q as uid %d: %v: %s%s", what, cred.Uid, err, answer, stderr.Bytes())
	}
	switch {
	case answer == "joined":
		return nil
	case answer == "no group":
		return ErrNoGroup
	case strings.HasPrefix(answer, "errno "):
		n, err := strconv.Atoi(strings.TrimPrefix(answer, "errno "))
		if err == nil && n > 0 {
			return unix.Errno(n)
		}
	}
	t.Fatalf("probe %q as uid %d: %q", what, cred.Uid, answer)
	return nil
}

// A test binary run by probe answers before any test code runs, in the
// package's init rather than in Main, so that a package with a TestMain of
// its own (vmtest) needs nothing more.
func init() {
	what := os.Getenv(probeEnv)
	if what == "" {
		return
	}
	answer, err := runProbe(strings.Fields(what))
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe %q: %v\n", what, err)
		os.Exit(1)
	}
	fmt.Println(answer)
	os.Exit(0)
}

// runProbe tries what probeEnv says and returns the answer probe parses.
func runProbe(what []string) (string, error) {
	// The probe proves nothing if it runs privileged.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	for _, want := range []string{
		fmt.Sprintf("Uid:\t%[1]d\t%[1]d\t%[1]d\t%[1]d\n", Nobody.Uid),
		"CapEff:\t0000000000000000\n",
	} {
		if !bytes.Contains(status, []byte(want)) {
			return "", fmt.Errorf("running privileged: /proc/self/status lacks %q", want)
		}
	}
	if len(what) != 3 {
		return "", fmt.Errorf("want 3 words, got %q", what)
	}
	protocol, group := unix.NETLINK_GENERIC, uint64(0)
	switch what[0] {
	case "protocol":
		if protocol, err = strconv.Atoi(what[1]); err != nil {
			return "", err
		}
		if group, err = strconv.ParseUint(what[2], 10, 32); err != nil {
			return "", err
		}
	case "family":
		c, err := genetlink.Dial(nil)
		if err != nil {
			return "", err
		}
		f, err := c.GetFamily(what[1])
		c.Close()
		if errors.Is(err, unix.ENOENT) {
			return errnoAnswer(unix.ENOENT), nil
		}
		if err != nil {
			return "", err
		}
		for _, g := range f.Groups {
			if g.Name == what[2] {
				group = uint64(g.ID)
			}
		}
		if group == 0 {
			return "no group", nil
		}
	default:
		return "", fmt.Errorf("unknown probe %q", what[0])
	}
	// What netlinksrc does: a socket of the protocol, then
	// NETLINK_ADD_MEMBERSHIP for the group.
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return errnoAnswer(err), nil
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return "", fmt.Errorf("bind: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		return errnoAnswer(err), nil
	}
	return "joined", nil
}

// errnoAnswer is the answer for a kernel's error.
func errnoAnswer(err error) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return "error " + err.Error()
	}
	return fmt.Sprintf("errno %d", int(errno))
}
