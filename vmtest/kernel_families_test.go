//go:build vmtest

package vmtest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// quotaImage is the ext4 image run.sh makes with mkfs.ext4 -O quota.
var quotaImage = flag.String("quota-image", "/lib/kevent/quota.img", "ext4 `image` with the quota feature (user quotas)")

// kernelModule loads module name of -moddir for the test, or, when -moddir
// has no name.ko, takes it to be built into the kernel. It is removed at
// the end of the test, once nothing uses it.
func kernelModule(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(*moduleDir, name+".ko")); errors.Is(err, os.ErrNotExist) {
		t.Logf("no %s.ko in %s: built into the kernel?", name, *moduleDir)
		return
	}
	m := useModule(t, name)
	m.load(t, "")
	// Registered after useModule's cleanup, so run before it: a block
	// device or filesystem just closed may hold the module a moment.
	t.Cleanup(func() {
		poll(5*time.Second, 50*time.Millisecond, func() bool {
			f := strings.Fields(procModules(name))
			return len(f) < 3 || f[2] == "0"
		})
	})
}

// askHost asks run.sh, which watches the serial console, for a monitor
// command: the line must start the console's line, and run.sh knows only
// system_powerdown.
func askHost(command string) {
	fmt.Printf("vmtest-host: %s\n", command)
}

// powerButton is the ACPI fixed-feature power button that qemu's PIIX4
// power management presses on system_powerdown, as the button driver names
// it.
const powerButton = "LNXPWRBN:00"

// TestACPIPowerButton: an unprivileged exporter on the acpi_event family
// counts presses of the VM's power button (qemu's system_powerdown, which
// run.sh sends when asked) with the button driver loaded: event
// button/power about LNXPWRBN:00, value 0x80 (the notification), payload
// the number of presses. Without userspace to act on it, the VM stays up.
// Where the kernel does not let uid 65534 join the group (a probe says), the
// unprivileged exporter must say so and root's counts the presses.
func TestACPIPowerButton(t *testing.T) {
	e := startFamilyAsProbed(t, "acpi", e2e.ProbeFamily(t, "", "acpi_event", "acpi_mc_group"), `
sources:
  - {name: acpi, family: acpi_event, groups: [acpi_mc_group], decoder: acpi}
`)
	kernelModule(t, "button")
	if _, err := os.Stat("/sys/bus/acpi/drivers/button/" + powerButton); err != nil {
		t.Fatalf("the button driver did not bind the power button: %v", err)
	}
	for press := 1; press <= 2; press++ {
		t0 := time.Now()
		askHost("system_powerdown")
		e.WaitFor(t, float64(press), "kevent_events_total", "source", "acpi", "event", "button/power", "object", powerButton)
		t.Logf("press %d counted %d ms after asking the host", press, time.Since(t0).Milliseconds())
	}
	mfs := e.Scrape(t)
	check(t, mfs, 0x80, "kevent_event_last_value", "source", "acpi", "event", "button/power", "object", powerButton)
	check(t, mfs, 1, "kevent_event_last_payload_info", "source", "acpi", "event", "button/power", "object", powerButton, "payload", "0x00000002")
	check(t, mfs, 0, "kevent_decode_errors_total", "source", "acpi")
}

// Quota limits (include/uapi/linux/quota.h): quotactl(2)'s commands and
// struct if_dqblk, whose block limits are in QIF_DQBLKSIZE (1 KiB) units.
const (
	qSetQuota   = 0x800008
	usrQuota    = 0
	qifBLimits  = 1
	subCmdShift = 8
)

type ifDqblk struct {
	BHardLimit, BSoftLimit, CurSpace  uint64
	IHardLimit, ISoftLimit, CurInodes uint64
	BTime, ITime                      uint64
	Valid                             uint32
	_                                 uint32
}

// setBlockLimits sets the block limits of user uid on the filesystem of
// device dev, in KiB.
func setBlockLimits(dev string, uid int, softKiB, hardKiB uint64) error {
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return err
	}
	q := ifDqblk{BSoftLimit: softKiB, BHardLimit: hardKiB, Valid: qifBLimits}
	_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL, uintptr(qSetQuota<<subCmdShift|usrQuota),
		uintptr(unsafe.Pointer(p)), uintptr(uid), uintptr(unsafe.Pointer(&q)), 0, 0)
	if errno != 0 {
		return fmt.Errorf("quotactl(Q_SETQUOTA, %s, %d): %w", dev, uid, errno)
	}
	return nil
}

// attachLoop attaches a copy of image to a free loop device and returns
// the device's path; it is detached at the end of the test.
func attachLoop(t *testing.T, image string) string {
	t.Helper()
	src, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// A copy: a run leaves the filesystem as it was.
	img, err := os.Create(filepath.Join(t.TempDir(), "quota.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if _, err := io.Copy(img, src); err != nil {
		t.Fatal(err)
	}
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		t.Fatalf("LOOP_CTL_GET_FREE: %v", err)
	}
	dev := fmt.Sprintf("/dev/loop%d", n)
	loop, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(int(loop.Fd()), unix.LOOP_SET_FD, int(img.Fd())); err != nil {
		loop.Close()
		t.Fatalf("LOOP_SET_FD %s: %v", dev, err)
	}
	t.Cleanup(func() {
		if err := unix.IoctlSetInt(int(loop.Fd()), unix.LOOP_CLR_FD, 0); err != nil {
			t.Errorf("LOOP_CLR_FD %s: %v", dev, err)
		}
		loop.Close()
	})
	return dev
}

// writeAs runs busybox dd as uid to write count KiB at seek KiB into file.
func writeAs(uid int, file string, seek, count int) error {
	cmd := exec.Command(*busybox, "dd", "if=/dev/zero", "of="+file, "bs=1024", "conv=notrunc",
		"seek="+strconv.Itoa(seek), "count="+strconv.Itoa(count))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("dd as uid %d: %v: %s", uid, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// TestQuotaWarnings: an unprivileged exporter on the VFS_DQUOT family
// counts the quota warnings of an ext4 with the quota feature, mounted with
// usrquota on a loop device: user 1000, with a 16 KiB soft and a 32 KiB
// hard block limit, writes 20 KiB (block_soft_limit), then 20 KiB more,
// which fails at the hard limit (block_hard_limit); root removes the file
// (block_below_soft_limit, caused by uid 0). Every warning is about the
// loop device, major:minor. Where the kernel does not let uid 65534 join
// the group (a probe says), the unprivileged exporter must say so and
// root's counts the warnings.
func TestQuotaWarnings(t *testing.T) {
	const uid = 1000
	for _, m := range []string{"loop", "quota_tree", "quota_v2"} {
		kernelModule(t, m)
	}
	e := startFamilyAsProbed(t, "quota", e2e.ProbeFamily(t, "", "VFS_DQUOT", "events"), `
sources:
  - {name: quota, family: VFS_DQUOT, groups: [events], decoder: quota}
`)

	dev := attachLoop(t, *quotaImage)
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	object := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	mnt := t.TempDir()
	if err := unix.Mount(dev, mnt, "ext4", 0, "usrquota"); err != nil {
		t.Fatalf("mount -t ext4 -o usrquota %s %s: %v", dev, mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("umount %s: %v", mnt, err)
		}
	})
	dir := filepath.Join(mnt, "u1000")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := setBlockLimits(dev, uid, 16, 32); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (%s) mounted with usrquota on %s; user %d: soft limit 16 KiB, hard 32 KiB", dev, object, mnt, uid)

	file := filepath.Join(dir, "data")
	if err := writeAs(uid, file, 0, 20); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "quota", "event", "block_soft_limit", "object", object)
	err := writeAs(uid, file, 20, 20)
	t.Logf("writing past the hard limit: %v", err)
	if err == nil || !strings.Contains(err.Error(), "quota") {
		t.Errorf("writing past the hard limit: %v, want a quota error", err)
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "quota", "event", "block_hard_limit", "object", object)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "quota", "event", "block_below_soft_limit", "object", object)

	mfs := e.Scrape(t)
	byUser := fmt.Sprintf("type=user id=%d caused_by=%d", uid, uid)
	check(t, mfs, 1, "kevent_event_last_payload_info", "source", "quota", "event", "block_soft_limit", "object", object, "payload", byUser)
	check(t, mfs, 1, "kevent_event_last_payload_info", "source", "quota", "event", "block_hard_limit", "object", object, "payload", byUser)
	check(t, mfs, 1, "kevent_event_last_payload_info", "source", "quota", "event", "block_below_soft_limit", "object", object,
		"payload", fmt.Sprintf("type=user id=%d caused_by=0", uid))
	check(t, mfs, 0, "kevent_decode_errors_total", "source", "quota")
}

// TestThermalFamilyUp: qemu's machine has no thermal zone and no cooling
// device, so the thermal family sends nothing here (its decoder is tested
// on messages built from the uapi header); an unprivileged exporter joins
// both its groups all the same, where the kernel lets uid 65534 (a probe
// says).
func TestThermalFamilyUp(t *testing.T) {
	startFamilyAsProbed(t, "thermal", e2e.ProbeFamily(t, "", "thermal", "event", "sampling"), `
sources:
  - {name: thermal, family: thermal, groups: [event, sampling], decoder: thermal}
`)
	zones, _ := filepath.Glob("/sys/class/thermal/thermal_zone*")
	cdevs, _ := filepath.Glob("/sys/class/thermal/cooling_device*")
	t.Logf("thermal source up with 2 groups; %d thermal zones, %d cooling devices", len(zones), len(cdevs))
}
