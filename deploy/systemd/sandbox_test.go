package systemd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sandbox is what the test reproduces of the unit's [Service] settings
// without systemd: the test binary re-executes itself in a new mount
// namespace (sandboxEnv set), sets up the mounts, installs the address
// family filter, and execs setpriv (util-linux), which switches to the
// unit's user and capabilities and execs the exporter.
type sandbox struct {
	// Files are copied into the sandbox before the file system turns
	// read-only: path inside -> path outside. Parents are created.
	Files map[string]string
	// Exec is the command setpriv runs.
	Exec []string

	UID, GID int
	// Caps are the capabilities kept in the bounding, inheritable and
	// ambient sets (CapabilityBoundingSet=, AmbientCapabilities=), as
	// setpriv names them (net_admin).
	Caps []string

	NoNewPrivileges     bool
	ProtectSystemStrict bool
	ProtectHome         bool
	PrivateTmp          bool
	PrivateDevices      bool
	Umask               int
	// Families are the address families socket() and socketpair() may
	// create (RestrictAddressFamilies=); empty means any.
	Families []int
}

const sandboxEnv = "KEVENT_SYSTEMD_SANDBOX"

// command returns the command that runs the sandbox.
func (s sandbox) command() (*exec.Cmd, error) {
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), sandboxEnv+"="+string(spec))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// sandboxMain runs in the re-executed test binary and does not return.
func sandboxMain(spec string) {
	var s sandbox
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		sandboxFail("spec", err)
	}
	if err := s.enter(); err != nil {
		sandboxFail("setting up", err)
	}
	sandboxFail("exec setpriv", s.exec())
}

func sandboxFail(what string, err error) {
	fmt.Fprintf(os.Stderr, "sandbox: %s: %v\n", what, err)
	os.Exit(125)
}

func (s sandbox) enter() error {
	// The process is alone in its mount namespace: nothing here reaches
	// the test's.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("private mounts: %w", err)
	}
	// The unit's paths (/usr/local/bin/kevent_exporter, ...), on a tmpfs
	// over /usr/local: the host's file system is not written.
	if err := unix.Mount("tmpfs", "/usr/local", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("tmpfs on /usr/local: %w", err)
	}
	for in, out := range s.Files {
		if err := copyFile(out, in); err != nil {
			return err
		}
	}
	if s.PrivateDevices {
		if err := privateDev(); err != nil {
			return err
		}
	}
	// ProtectSystem=strict: the whole hierarchy read-only. (systemd leaves
	// /proc and /sys to ProtectKernelTunables= and /dev to PrivateDevices=,
	// which make the parts that matter read-only too.)
	if s.ProtectSystemStrict {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(-1, "/", unix.AT_RECURSIVE, &attr); err != nil {
			return fmt.Errorf("read-only /: %w", err)
		}
	}
	// New mounts after that are writable, as systemd's are.
	if s.PrivateTmp {
		for _, d := range []string{"/tmp", "/var/tmp"} {
			if err := unix.Mount("tmpfs", d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
				return fmt.Errorf("PrivateTmp %s: %w", d, err)
			}
		}
	}
	if s.ProtectHome {
		for _, d := range []string{"/home", "/root", "/run/user"} {
			if _, err := os.Stat(d); err != nil {
				continue
			}
			if err := unix.Mount("tmpfs", d, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=000"); err != nil {
				return fmt.Errorf("ProtectHome %s: %w", d, err)
			}
		}
	}
	unix.Umask(s.Umask)
	if len(s.Families) > 0 {
		return restrictAddressFamilies(s.Families)
	}
	return nil
}

// privateDev replaces /dev by a tmpfs holding the pseudo-devices
// PrivateDevices= keeps.
func privateDev() error {
	if err := unix.Mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755"); err != nil {
		return fmt.Errorf("PrivateDevices: %w", err)
	}
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		if err := unix.Mknod("/dev/"+d.name, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("PrivateDevices: /dev/%s: %w", d.name, err)
		}
		if err := os.Chmod("/dev/"+d.name, 0o666); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm()|0o444)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(fi.Mode().Perm() | 0o444); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Seccomp, as linux/seccomp.h and linux/filter.h define it.
const (
	seccompSetModeFilter  = 1
	seccompFlagTsync      = 1
	seccompRetAllow       = 0x7fff0000
	seccompRetErrno       = 0x00050000
	seccompDataNr         = 0
	seccompDataArch       = 4
	seccompDataArgs0Lower = 16 // args[0], low 32 bits on a little-endian machine
)

// restrictAddressFamilies installs, on every thread, a seccomp filter that
// fails socket() and socketpair() with EAFNOSUPPORT unless their family is
// one of families: what RestrictAddressFamilies= does. Syscalls of another
// architecture than the native one are let through (systemd's
// SystemCallArchitectures=native refuses them; not reproduced here).
func restrictAddressFamilies(families []int) error {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return fmt.Errorf("RestrictAddressFamilies: no filter for %s", runtime.GOARCH)
	}
	n := uint8(len(families))
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	ret := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }
	// The jumps count the instructions they skip; allow is the last one.
	prog := []unix.SockFilter{
		ld(seccompDataArch),
		jeq(arch, 0, 5+n),
		ld(seccompDataNr),
		jeq(uint32(unix.SYS_SOCKET), 1, 0),
		jeq(uint32(unix.SYS_SOCKETPAIR), 0, 2+n),
		ld(seccompDataArgs0Lower),
	}
	for i, f := range families {
		prog = append(prog, jeq(uint32(f), n-uint8(i), 0))
	}
	prog = append(prog, ret(seccompRetErrno|uint32(unix.EAFNOSUPPORT)), ret(seccompRetAllow))
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// Without NoNewPrivileges the filter needs CAP_SYS_ADMIN, which the
	// sandbox has until setpriv drops it.
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, seccompSetModeFilter, seccompFlagTsync, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("RestrictAddressFamilies: seccomp: %w", errno)
	}
	return nil
}

// exec runs setpriv, which takes the unit's user, groups, capabilities and
// no_new_privs and execs the command.
func (s sandbox) exec() error {
	caps := "-all"
	for _, c := range s.Caps {
		caps += ",+" + c
	}
	args := []string{"setpriv",
		fmt.Sprintf("--reuid=%d", s.UID), fmt.Sprintf("--regid=%d", s.GID), "--clear-groups",
		"--bounding-set=" + caps, "--inh-caps=" + caps, "--ambient-caps=" + caps,
	}
	if s.NoNewPrivileges {
		args = append(args, "--no-new-privs")
	}
	args = append(append(args, "--"), s.Exec...)
	path, err := exec.LookPath("setpriv")
	if err != nil {
		return err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, sandboxEnv+"=") {
			env = append(env, kv)
		}
	}
	return syscall.Exec(path, args, env)
}
