package decoder_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// The kernel's uapi headers, as linux-libc-dev installs them.
const (
	thermalHeader = "/usr/include/linux/thermal.h"
	quotaHeader   = "/usr/include/linux/quota.h"
)

// readSystemHeader returns a header of the system's, or skips the test if
// it is not installed (failing it under KEVENT_TEST_STRICT=1).
func readSystemHeader(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) && os.Getenv("KEVENT_TEST_STRICT") != "1" {
			t.Skipf("%s is not installed (Debian's linux-libc-dev): %v", path, err)
		}
		t.Fatal(err)
	}
	return string(b)
}

// checkConsts compares the decoder's constants with a header's. Those in
// later lists newer kernels define and header may lack: they are checked
// only when it has them. Every constant of header whose name has one of
// the prefixes must be known to the decoder, in want or later.
func checkConsts(t *testing.T, path string, consts, want, later map[string]int64, prefixes ...string) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		got, ok := consts[name]
		switch {
		case !ok:
			t.Errorf("%s: not found in %s", name, path)
		case got != want[name]:
			t.Errorf("%s: %s says %d, decoder says %d", name, path, got, want[name])
		}
	}
	var absent []string
	for _, name := range slices.Sorted(maps.Keys(later)) {
		got, ok := consts[name]
		switch {
		case !ok:
			absent = append(absent, name)
		case got != later[name]:
			t.Errorf("%s: %s says %d, decoder says %d", name, path, got, later[name])
		}
	}
	if len(absent) > 0 {
		t.Logf("%s predates %s (newer kernels'): checked in kernel sources only", path, strings.Join(absent, ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(consts)) {
		if strings.HasPrefix(name, "__") || strings.HasSuffix(name, "_MAX") {
			continue
		}
		for _, p := range prefixes {
			_, known := want[name]
			_, knownLater := later[name]
			if strings.HasPrefix(name, p) && !known && !knownLater {
				t.Errorf("%s: in %s, unknown to the decoder", name, path)
			}
		}
	}
}

// TestThermalUAPI checks the thermal decoder's attributes, events, names
// and trip types against the kernel's include/uapi/linux/thermal.h. The
// family's requests (enum thermal_genl_cmd) are not read: the decoder
// sees the multicast events only.
func TestThermalUAPI(t *testing.T) {
	src := readSystemHeader(t, thermalHeader)
	consts := parseHeader(t, src)
	want := map[string]int64{
		"THERMAL_NAME_LENGTH":                          decoder.ThermalNameLength,
		"THERMAL_GENL_VERSION":                         1,
		"THERMAL_GENL_ATTR_UNSPEC":                     0,
		"THERMAL_GENL_ATTR_TZ":                         decoder.ThermalAttrTz,
		"THERMAL_GENL_ATTR_TZ_ID":                      decoder.ThermalAttrTzID,
		"THERMAL_GENL_ATTR_TZ_TEMP":                    decoder.ThermalAttrTzTemp,
		"THERMAL_GENL_ATTR_TZ_TRIP":                    decoder.ThermalAttrTzTrip,
		"THERMAL_GENL_ATTR_TZ_TRIP_ID":                 decoder.ThermalAttrTzTripID,
		"THERMAL_GENL_ATTR_TZ_TRIP_TYPE":               decoder.ThermalAttrTzTripType,
		"THERMAL_GENL_ATTR_TZ_TRIP_TEMP":               decoder.ThermalAttrTzTripTemp,
		"THERMAL_GENL_ATTR_TZ_TRIP_HYST":               decoder.ThermalAttrTzTripHyst,
		"THERMAL_GENL_ATTR_TZ_MODE":                    decoder.ThermalAttrTzMode,
		"THERMAL_GENL_ATTR_TZ_NAME":                    decoder.ThermalAttrTzName,
		"THERMAL_GENL_ATTR_TZ_CDEV_WEIGHT":             decoder.ThermalAttrTzCdevWeight,
		"THERMAL_GENL_ATTR_TZ_GOV":                     decoder.ThermalAttrTzGov,
		"THERMAL_GENL_ATTR_TZ_GOV_NAME":                decoder.ThermalAttrTzGovName,
		"THERMAL_GENL_ATTR_CDEV":                       decoder.ThermalAttrCdev,
		"THERMAL_GENL_ATTR_CDEV_ID":                    decoder.ThermalAttrCdevID,
		"THERMAL_GENL_ATTR_CDEV_CUR_STATE":             decoder.ThermalAttrCdevCurState,
		"THERMAL_GENL_ATTR_CDEV_MAX_STATE":             decoder.ThermalAttrCdevMaxState,
		"THERMAL_GENL_ATTR_CDEV_NAME":                  decoder.ThermalAttrCdevName,
		"THERMAL_GENL_ATTR_GOV_NAME":                   decoder.ThermalAttrGovName,
		"THERMAL_GENL_ATTR_CPU_CAPABILITY":             decoder.ThermalAttrCPUCapability,
		"THERMAL_GENL_ATTR_CPU_CAPABILITY_ID":          decoder.ThermalAttrCPUCapabilityID,
		"THERMAL_GENL_ATTR_CPU_CAPABILITY_PERFORMANCE": decoder.ThermalAttrCPUCapabilityPerformance,
		"THERMAL_GENL_ATTR_CPU_CAPABILITY_EFFICIENCY":  decoder.ThermalAttrCPUCapabilityEfficiency,
		"THERMAL_GENL_SAMPLING_TEMP":                   decoder.ThermalSamplingTemp,
		"THERMAL_GENL_EVENT_UNSPEC":                    0,
		"THERMAL_GENL_EVENT_TZ_CREATE":                 decoder.ThermalEventTzCreate,
		"THERMAL_GENL_EVENT_TZ_DELETE":                 decoder.ThermalEventTzDelete,
		"THERMAL_GENL_EVENT_TZ_DISABLE":                decoder.ThermalEventTzDisable,
		"THERMAL_GENL_EVENT_TZ_ENABLE":                 decoder.ThermalEventTzEnable,
		"THERMAL_GENL_EVENT_TZ_TRIP_UP":                decoder.ThermalEventTzTripUp,
		"THERMAL_GENL_EVENT_TZ_TRIP_DOWN":              decoder.ThermalEventTzTripDown,
		"THERMAL_GENL_EVENT_TZ_TRIP_CHANGE":            decoder.ThermalEventTzTripChange,
		"THERMAL_GENL_EVENT_TZ_TRIP_ADD":               decoder.ThermalEventTzTripAdd,
		"THERMAL_GENL_EVENT_TZ_TRIP_DELETE":            decoder.ThermalEventTzTripDelete,
		"THERMAL_GENL_EVENT_CDEV_ADD":                  decoder.ThermalEventCdevAdd,
		"THERMAL_GENL_EVENT_CDEV_DELETE":               decoder.ThermalEventCdevDelete,
		"THERMAL_GENL_EVENT_CDEV_STATE_UPDATE":         decoder.ThermalEventCdevStateUpdate,
		"THERMAL_GENL_EVENT_TZ_GOV_CHANGE":             decoder.ThermalEventTzGovChange,
		"THERMAL_GENL_EVENT_CPU_CAPABILITY_CHANGE":     decoder.ThermalEventCPUCapabilityChange,
		"THERMAL_TRIP_ACTIVE":                          decoder.ThermalTripActive,
		"THERMAL_TRIP_PASSIVE":                         decoder.ThermalTripPassive,
		"THERMAL_TRIP_HOT":                             decoder.ThermalTripHot,
		"THERMAL_TRIP_CRITICAL":                        decoder.ThermalTripCritical,
	}
	// The user thresholds, Linux 6.13 and later.
	later := map[string]int64{
		"THERMAL_GENL_ATTR_THRESHOLD":           decoder.ThermalAttrThreshold,
		"THERMAL_GENL_ATTR_THRESHOLD_TEMP":      decoder.ThermalAttrThresholdTemp,
		"THERMAL_GENL_ATTR_THRESHOLD_DIRECTION": decoder.ThermalAttrThresholdDirection,
		"THERMAL_GENL_ATTR_TZ_PREV_TEMP":        decoder.ThermalAttrTzPrevTemp,
		"THERMAL_GENL_EVENT_THRESHOLD_ADD":      decoder.ThermalEventThresholdAdd,
		"THERMAL_GENL_EVENT_THRESHOLD_DELETE":   decoder.ThermalEventThresholdDelete,
		"THERMAL_GENL_EVENT_THRESHOLD_FLUSH":    decoder.ThermalEventThresholdFlush,
		"THERMAL_GENL_EVENT_THRESHOLD_UP":       decoder.ThermalEventThresholdUp,
		"THERMAL_GENL_EVENT_THRESHOLD_DOWN":     decoder.ThermalEventThresholdDown,
		"THERMAL_THRESHOLD_WAY_UP":              decoder.ThermalThresholdWayUp,
		"THERMAL_THRESHOLD_WAY_DOWN":            decoder.ThermalThresholdWayDown,
	}
	checkConsts(t, thermalHeader, consts, want, later,
		"THERMAL_GENL_ATTR_", "THERMAL_GENL_EVENT_", "THERMAL_GENL_SAMPLING_", "THERMAL_TRIP_", "THERMAL_THRESHOLD_")

	strs := parseHeaderStrings(t, src)
	for _, c := range []struct{ name, want string }{
		{"THERMAL_GENL_FAMILY_NAME", decoder.ThermalGenlFamily},
		{"THERMAL_GENL_EVENT_GROUP_NAME", decoder.ThermalGenlEventGroup},
		{"THERMAL_GENL_SAMPLING_GROUP_NAME", decoder.ThermalGenlSamplingGroup},
	} {
		if got, ok := strs[c.name]; !ok || got != c.want {
			t.Errorf("%s: %s says %q (found: %t), decoder says %q", c.name, thermalHeader, got, ok, c.want)
		}
	}
}

// TestQuotaUAPI checks the quota decoder's command, attributes, warnings
// and quota types against the kernel's include/uapi/linux/quota.h.
func TestQuotaUAPI(t *testing.T) {
	consts := parseHeader(t, readSystemHeader(t, quotaHeader))
	want := map[string]int64{
		"QUOTA_NL_C_UNSPEC":      0,
		"QUOTA_NL_C_WARNING":     decoder.QuotaCmdWarning,
		"QUOTA_NL_A_UNSPEC":      0,
		"QUOTA_NL_A_QTYPE":       decoder.QuotaAttrQtype,
		"QUOTA_NL_A_EXCESS_ID":   decoder.QuotaAttrExcessID,
		"QUOTA_NL_A_WARNING":     decoder.QuotaAttrWarning,
		"QUOTA_NL_A_DEV_MAJOR":   decoder.QuotaAttrDevMajor,
		"QUOTA_NL_A_DEV_MINOR":   decoder.QuotaAttrDevMinor,
		"QUOTA_NL_A_CAUSED_ID":   decoder.QuotaAttrCausedID,
		"QUOTA_NL_A_PAD":         decoder.QuotaAttrPad,
		"QUOTA_NL_NOWARN":        decoder.QuotaNoWarn,
		"QUOTA_NL_IHARDWARN":     decoder.QuotaIHardWarn,
		"QUOTA_NL_ISOFTLONGWARN": decoder.QuotaISoftLongWarn,
		"QUOTA_NL_ISOFTWARN":     decoder.QuotaISoftWarn,
		"QUOTA_NL_BHARDWARN":     decoder.QuotaBHardWarn,
		"QUOTA_NL_BSOFTLONGWARN": decoder.QuotaBSoftLongWarn,
		"QUOTA_NL_BSOFTWARN":     decoder.QuotaBSoftWarn,
		"QUOTA_NL_IHARDBELOW":    decoder.QuotaIHardBelow,
		"QUOTA_NL_ISOFTBELOW":    decoder.QuotaISoftBelow,
		"QUOTA_NL_BHARDBELOW":    decoder.QuotaBHardBelow,
		"QUOTA_NL_BSOFTBELOW":    decoder.QuotaBSoftBelow,
		"USRQUOTA":               decoder.QuotaTypeUser,
		"GRPQUOTA":               decoder.QuotaTypeGroup,
		"PRJQUOTA":               decoder.QuotaTypeProject,
		"MAXQUOTAS":              decoder.QuotaTypeProject + 1,
	}
	checkConsts(t, quotaHeader, consts, want, nil, "QUOTA_NL_")
}

// TestACPILayout checks the layout of struct acpi_genl_event, which no uapi
// header defines: against a Go struct of the same fields, which the
// compiler lays out as C does (char arrays, then naturally aligned u32s).
func TestACPILayout(t *testing.T) {
	var e struct {
		DeviceClass [decoder.ACPIDeviceClassLen]byte
		BusID       [decoder.ACPIBusIDLen]byte
		Type        uint32
		Data        uint32
	}
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"offsetof(bus_id)", unsafe.Offsetof(e.BusID), decoder.ACPIDeviceClassLen},
		{"offsetof(type)", unsafe.Offsetof(e.Type), decoder.ACPIEventTypeOffset},
		{"offsetof(data)", unsafe.Offsetof(e.Data), decoder.ACPIEventDataOffset},
		{"sizeof(struct acpi_genl_event)", unsafe.Sizeof(e), decoder.ACPIEventLen},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d by the compiler, %d in the decoder", c.name, c.got, c.want)
		}
	}
}

// kernelSource returns the file at rel in a kernel source tree: the one
// KEVENT_KERNEL_SRC names, else an unpacked Debian linux-source package
// (/usr/src/linux-source-*) or, for headers, a linux-headers package;
// without one the test is skipped.
func kernelSource(t *testing.T, rel string) (path, src string) {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/src/linux-source-*")
	headers, _ := filepath.Glob("/usr/src/linux-headers-*")
	dirs = append(dirs, headers...)
	if d := os.Getenv("KEVENT_KERNEL_SRC"); d != "" {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		p := filepath.Join(d, rel)
		if b, err := os.ReadFile(p); err == nil {
			return p, string(b)
		}
	}
	t.Skipf("no kernel source tree with %s: set KEVENT_KERNEL_SRC to one (e.g. tar -xJf /usr/src/linux-source-6.1.tar.xz "+
		"linux-source-6.1/%s, and KEVENT_KERNEL_SRC=$PWD/linux-source-6.1)", rel, rel)
	return "", ""
}

var (
	cStruct      = regexp.MustCompile(`(?s)\bstruct\s+acpi_genl_event\s*\{(.*?)\}`)
	cStructField = regexp.MustCompile(`^(\w+(?:\s+\w+)?)\s+(\w+)(?:\[(\d+)\])?$`)
	cTypedefChar = regexp.MustCompile(`\btypedef\s+char\s+acpi_device_class\[(\d+)\]`)
)

// TestACPIKernelSource checks the ACPI decoder's constants against
// drivers/acpi/event.c and include/acpi/acpi_bus.h of a kernel source
// tree, laying struct acpi_genl_event out by the C rules.
func TestACPIKernelSource(t *testing.T) {
	eventPath, src := kernelSource(t, "drivers/acpi/event.c")
	busPath, bus := kernelSource(t, "include/acpi/acpi_bus.h")
	src = cComment.ReplaceAllString(src, " ")

	consts := parseHeader(t, src)
	checkConsts(t, eventPath, consts, map[string]int64{
		"ACPI_GENL_ATTR_UNSPEC": 0,
		"ACPI_GENL_ATTR_EVENT":  decoder.ACPIAttrEvent,
		"ACPI_GENL_CMD_UNSPEC":  0,
		"ACPI_GENL_CMD_EVENT":   decoder.ACPICmdEvent,
		"ACPI_GENL_VERSION":     decoder.ACPIGenlVersion,
	}, nil, "ACPI_GENL_ATTR_", "ACPI_GENL_CMD_")
	strs := parseHeaderStrings(t, src)
	for _, c := range []struct{ name, want string }{
		{"ACPI_GENL_FAMILY_NAME", decoder.ACPIGenlFamily},
		{"ACPI_GENL_MCAST_GROUP_NAME", decoder.ACPIGenlGroup},
	} {
		if got, ok := strs[c.name]; !ok || got != c.want {
			t.Errorf("%s: %s says %q (found: %t), decoder says %q", c.name, eventPath, got, ok, c.want)
		}
	}

	m := cTypedefChar.FindStringSubmatch(bus)
	if m == nil {
		t.Fatalf("no typedef of acpi_device_class in %s", busPath)
	}
	classLen, _ := strconv.Atoi(m[1])

	sm := cStruct.FindStringSubmatch(src)
	if sm == nil {
		t.Fatalf("no struct acpi_genl_event in %s", eventPath)
	}
	// Lay the fields out: char arrays byte-aligned, u32 4-aligned.
	offsets, sizes := make(map[string]int), make(map[string]int)
	var off, align int
	for f := range strings.SplitSeq(sm[1], ";") {
		f = strings.Join(strings.Fields(f), " ")
		if f == "" {
			continue
		}
		fm := cStructField.FindStringSubmatch(f)
		if fm == nil {
			t.Fatalf("cannot parse field %q of struct acpi_genl_event", f)
		}
		var size, a int
		switch fm[1] {
		case "acpi_device_class":
			size, a = classLen, 1
		case "char":
			size, _ = strconv.Atoi(fm[3])
			a = 1
		case "u32":
			size, a = 4, 4
		default:
			t.Fatalf("field %q of struct acpi_genl_event: unknown type %s", f, fm[1])
		}
		off = (off + a - 1) &^ (a - 1)
		offsets[fm[2]], sizes[fm[2]] = off, size
		off += size
		align = max(align, a)
	}
	size := (off + align - 1) &^ (align - 1)
	got := map[string]int{"device_class": offsets["device_class"], "bus_id": offsets["bus_id"], "type": offsets["type"], "data": offsets["data"], "size": size}
	want := map[string]int{"device_class": 0, "bus_id": decoder.ACPIDeviceClassLen, "type": decoder.ACPIEventTypeOffset, "data": decoder.ACPIEventDataOffset, "size": decoder.ACPIEventLen}
	if !maps.Equal(got, want) || len(offsets) != 4 {
		t.Errorf("struct acpi_genl_event in %s is laid out as %v (fields %v), the decoder says %v", eventPath, got, offsets, want)
	}
	if sizes["device_class"] != decoder.ACPIDeviceClassLen || sizes["bus_id"] != decoder.ACPIBusIDLen {
		t.Errorf("device_class is %d bytes (decoder: %d), bus_id %d (decoder: %d)",
			sizes["device_class"], decoder.ACPIDeviceClassLen, sizes["bus_id"], decoder.ACPIBusIDLen)
	}
	if !t.Failed() {
		t.Logf("%s and %s agree with the decoder", eventPath, busPath)
	}
}
