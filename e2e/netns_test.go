package e2e_test

// Network namespaces of a test's own, for the tests that make interfaces:
// the package's namespace (testenv.Main) is shared by all its tests.

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// newNetns makes a network namespace for the test, held by a sleeping
// child, with lo up (the exporter serves on 127.0.0.1 there), and IPv6
// addresses generated for no interface, so that the test's addresses are
// the namespace's only ones. It returns the namespace's path.
func newNetns(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatalf("making a network namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	path := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	if err := testenv.InNetns(path, func() error { return testenv.LinkUp("lo") }); err != nil {
		t.Fatal(err)
	}
	// IN6_ADDR_GEN_MODE_NONE: no link-local address on new interfaces.
	sysctlIn(t, path, "net/ipv6/conf/default/addr_gen_mode", "1")
	return path
}

// sysctlIn sets a network sysctl (a path under /proc/sys) of the namespace
// at ns, which those files show the namespace of the thread that opens them.
func sysctlIn(t *testing.T, ns, key, value string) {
	t.Helper()
	if err := testenv.InNetns(ns, func() error { return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644) }); err != nil {
		t.Fatal(err)
	}
}

// startExporterIn runs an exporter in the network namespace at ns, with
// more nsenter options (--setuid) in cred.
func startExporterIn(t *testing.T, ns, config string, cred ...string) *e2e.Exporter {
	t.Helper()
	testenv.RequireRoot(t, "entering network namespaces")
	wrapper := append([]string{"nsenter", "--net=" + ns}, cred...)
	return e2e.Start(t, e2e.Options{Binary: exporterBinary, Config: config, Wrapper: append(wrapper, "--"), Netns: ns})
}

// startExporterArgsIn runs an exporter with args in the network namespace
// at ns.
func startExporterArgsIn(t *testing.T, ns string, args ...string) *e2e.Exporter {
	t.Helper()
	testenv.RequireRoot(t, "entering network namespaces")
	return e2e.Start(t, e2e.Options{Binary: exporterBinary, Args: args, Wrapper: []string{"nsenter", "--net=" + ns, "--"}, Netns: ns})
}
