package decoder_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// strAttr returns an attribute holding s and a NUL, as nla_put_string
// builds it.
func strAttr(typ uint16, s string) []byte {
	return nlsend.AppendAttr(nil, typ, cstr(s))
}

// mdeg returns a temperature in millidegrees Celsius as the thermal family
// sends it: an int in a u32 attribute.
func mdeg(v int32) uint32 {
	return uint32(v)
}

// The thermal family's messages, attribute for attribute as
// drivers/thermal/thermal_netlink.c (Linux 6.1; thresholds 6.13) builds
// them.

func tzCreate(tz uint32, name string) []byte {
	return genlMsg(decoder.ThermalEventTzCreate, u32attr(decoder.ThermalAttrTzID, tz), strAttr(decoder.ThermalAttrTzName, name))
}

func tzEvent(cmd uint8, tz uint32) []byte {
	return genlMsg(cmd, u32attr(decoder.ThermalAttrTzID, tz))
}

func tripCrossed(cmd uint8, tz, trip uint32, temp int32) []byte {
	return genlMsg(cmd, u32attr(decoder.ThermalAttrTzID, tz), u32attr(decoder.ThermalAttrTzTripID, trip),
		u32attr(decoder.ThermalAttrTzTemp, mdeg(temp)))
}

func tripAdd(cmd uint8, tz, trip, typ uint32, temp, hyst int32) []byte {
	return genlMsg(cmd, u32attr(decoder.ThermalAttrTzID, tz), u32attr(decoder.ThermalAttrTzTripID, trip),
		u32attr(decoder.ThermalAttrTzTripType, typ), u32attr(decoder.ThermalAttrTzTripTemp, mdeg(temp)),
		u32attr(decoder.ThermalAttrTzTripHyst, mdeg(hyst)))
}

func cdevAdd(cdev uint32, name string, max uint32) []byte {
	return genlMsg(decoder.ThermalEventCdevAdd, strAttr(decoder.ThermalAttrCdevName, name),
		u32attr(decoder.ThermalAttrCdevID, cdev), u32attr(decoder.ThermalAttrCdevMaxState, max))
}

func cdevUpdate(cdev, state uint32) []byte {
	return genlMsg(decoder.ThermalEventCdevStateUpdate, u32attr(decoder.ThermalAttrCdevID, cdev),
		u32attr(decoder.ThermalAttrCdevCurState, state))
}

func sample(tz uint32, temp int32) []byte {
	return genlMsg(decoder.ThermalSamplingTemp, u32attr(decoder.ThermalAttrTzID, tz), u32attr(decoder.ThermalAttrTzTemp, mdeg(temp)))
}

func cpuCaps(cpus ...uint32) []byte {
	var nest []byte
	for _, c := range cpus {
		nest = concat(nest, u32attr(decoder.ThermalAttrCPUCapabilityID, c),
			u32attr(decoder.ThermalAttrCPUCapabilityPerformance, 512), u32attr(decoder.ThermalAttrCPUCapabilityEfficiency, 480))
	}
	return genlMsg(decoder.ThermalEventCPUCapabilityChange, nlsend.AppendAttr(nil, decoder.ThermalAttrCPUCapability|nlaFNested, nest))
}

func thresholdSet(cmd uint8, tz uint32, temp int32, dir uint32) []byte {
	return genlMsg(cmd, u32attr(decoder.ThermalAttrTzID, tz), u32attr(decoder.ThermalAttrThresholdTemp, mdeg(temp)),
		u32attr(decoder.ThermalAttrThresholdDirection, dir))
}

func thresholdCrossed(cmd uint8, tz uint32, prev, temp int32) []byte {
	return genlMsg(cmd, u32attr(decoder.ThermalAttrTzID, tz), u32attr(decoder.ThermalAttrTzPrevTemp, mdeg(prev)),
		u32attr(decoder.ThermalAttrTzTemp, mdeg(temp)))
}

// TestThermal decodes each message of the family on a decoder that has
// seen no zone created.
func TestThermal(t *testing.T) {
	for _, c := range []struct {
		name     string
		datagram []byte
		want     []event
		bad      int
	}{
		{"zone created", tzCreate(3, "acpitz"), []event{{Name: "tz/create", Object: "tz3", Payload: "type=acpitz"}}, 0},
		{"zone deleted", tzEvent(decoder.ThermalEventTzDelete, 3), []event{{Name: "tz/delete", Object: "tz3", Gone: "tz3"}}, 0},
		{"zone enabled", tzEvent(decoder.ThermalEventTzEnable, 0), []event{{Name: "tz/enable", Object: "tz0"}}, 0},
		{"zone disabled", tzEvent(decoder.ThermalEventTzDisable, 12), []event{{Name: "tz/disable", Object: "tz12"}}, 0},
		{"trip crossed up", tripCrossed(decoder.ThermalEventTzTripUp, 3, 1, 85500),
			[]event{{Name: "trip/up", Object: "tz3/trip1", Value: 85.5, HasValue: true}}, 0},
		{"trip crossed down, below zero", tripCrossed(decoder.ThermalEventTzTripDown, 3, 0, -5250),
			[]event{{Name: "trip/down", Object: "tz3/trip0", Value: -5.25, HasValue: true}}, 0},
		{"trip added", tripAdd(decoder.ThermalEventTzTripAdd, 2, 4, decoder.ThermalTripPassive, 95000, 2000),
			[]event{{Name: "trip/add", Object: "tz2/trip4", Value: 95, HasValue: true, Payload: "trip_type=passive hysteresis=2"}}, 0},
		{"trip changed, a later kernel's trip type", tripAdd(decoder.ThermalEventTzTripChange, 2, 4, 9, 105000, 1500),
			[]event{{Name: "trip/change", Object: "tz2/trip4", Value: 105, HasValue: true, Payload: "trip_type=9 hysteresis=1.5"}}, 0},
		{"trip deleted", genlMsg(decoder.ThermalEventTzTripDelete, u32attr(decoder.ThermalAttrTzID, 2), u32attr(decoder.ThermalAttrTzTripID, 4)),
			[]event{{Name: "trip/delete", Object: "tz2/trip4", Gone: "tz2/trip4"}}, 0},
		{"cooling device added", cdevAdd(2, "Processor", 3),
			[]event{{Name: "cdev/add", Object: "cdev2", Value: 3, HasValue: true, Payload: "type=Processor"}}, 0},
		{"cooling device deleted", genlMsg(decoder.ThermalEventCdevDelete, u32attr(decoder.ThermalAttrCdevID, 2)),
			[]event{{Name: "cdev/delete", Object: "cdev2", Gone: "cdev2"}}, 0},
		{"cooling device state", cdevUpdate(7, 2), []event{{Name: "cdev/update", Object: "cdev7", Value: 2, HasValue: true}}, 0},
		{"governor changed", genlMsg(decoder.ThermalEventTzGovChange, u32attr(decoder.ThermalAttrTzID, 1), strAttr(decoder.ThermalAttrGovName, "step_wise")),
			[]event{{Name: "tz/governor", Object: "tz1", Payload: "governor=step_wise"}}, 0},
		{"CPU capabilities", cpuCaps(0, 1, 5), []event{{Name: "cpu/capability", Value: 3, HasValue: true}}, 0},
		{"temperature sample", sample(3, 47000), []event{{Name: "tz/temperature", Object: "tz3", Value: 47, HasValue: true}}, 0},
		{"threshold added", thresholdSet(decoder.ThermalEventThresholdAdd, 3, 70000, decoder.ThermalThresholdWayUp),
			[]event{{Name: "threshold/add", Object: "tz3", Value: 70, HasValue: true, Payload: "direction=up"}}, 0},
		{"threshold deleted", thresholdSet(decoder.ThermalEventThresholdDelete, 3, 70000, decoder.ThermalThresholdWayUp|decoder.ThermalThresholdWayDown),
			[]event{{Name: "threshold/delete", Object: "tz3", Value: 70, HasValue: true, Payload: "direction=both"}}, 0},
		{"threshold of a later kernel's direction", thresholdSet(decoder.ThermalEventThresholdAdd, 3, 70000, 4),
			[]event{{Name: "threshold/add", Object: "tz3", Value: 70, HasValue: true, Payload: "direction=4"}}, 0},
		{"thresholds flushed", tzEvent(decoder.ThermalEventThresholdFlush, 3), []event{{Name: "threshold/flush", Object: "tz3"}}, 0},
		{"threshold crossed up", thresholdCrossed(decoder.ThermalEventThresholdUp, 3, 69000, 71000),
			[]event{{Name: "threshold/up", Object: "tz3", Value: 71, HasValue: true, Payload: "previous=69"}}, 0},
		{"threshold crossed down", thresholdCrossed(decoder.ThermalEventThresholdDown, 3, 71000, 68500),
			[]event{{Name: "threshold/down", Object: "tz3", Value: 68.5, HasValue: true, Payload: "previous=71"}}, 0},
		{"a later kernel's event about a zone", genlMsg(42, u32attr(decoder.ThermalAttrTzID, 3), u32attr(99, 1)),
			[]event{{Name: "42", Object: "tz3"}}, 0},
		{"a later kernel's event", genlMsg(43), []event{{Name: "43"}}, 0},
		{"unknown attributes skipped, attribute flags ignored",
			genlMsg(decoder.ThermalEventTzTripUp, u32attr(decoder.ThermalAttrTzID|nlaFNetByteorder, 3), nlsend.AppendAttr(nil, 99, []byte{1, 2, 3}),
				nlsend.AppendAttr(nil, decoder.ThermalAttrTz|nlaFNested, u32attr(decoder.ThermalAttrTzID, 9)),
				u32attr(decoder.ThermalAttrTzTripID, 1), u32attr(decoder.ThermalAttrTzTemp, 90000)),
			[]event{{Name: "trip/up", Object: "tz3/trip1", Value: 90, HasValue: true}}, 0},
		{"last attribute unpadded", withoutPadding(genlMsg(decoder.ThermalEventTzCreate, u32attr(decoder.ThermalAttrTzID, 1), withoutAttrPadding(strAttr(decoder.ThermalAttrTzName, "x")))),
			[]event{{Name: "tz/create", Object: "tz1", Payload: "type=x"}}, 0},
		{"two messages", concat(tripCrossed(decoder.ThermalEventTzTripUp, 1, 0, 60000), cdevUpdate(0, 1)),
			[]event{{Name: "trip/up", Object: "tz1/trip0", Value: 60, HasValue: true}, {Name: "cdev/update", Object: "cdev0", Value: 1, HasValue: true}}, 0},

		{"no generic netlink header", nlsend.AppendMessage(nil, genlFamilyID, 0, []byte{1, 1}), nil, 1},
		{"truncated attribute header", genlMsg(decoder.ThermalEventTzEnable, []byte{8, 0}), nil, 1},
		{"attribute length under its header", genlMsg(decoder.ThermalEventTzEnable, rawAttr(3, decoder.ThermalAttrTzID, nil)), nil, 1},
		{"attribute length past the message", genlMsg(decoder.ThermalEventTzEnable, rawAttr(200, decoder.ThermalAttrTzID, u32(1))), nil, 1},
		{"zone id of 2 bytes", genlMsg(decoder.ThermalEventTzEnable, nlsend.AppendAttr(nil, decoder.ThermalAttrTzID, []byte{3, 0})), nil, 1},
		{"temperature of 8 bytes", genlMsg(decoder.ThermalEventTzTripUp, u32attr(decoder.ThermalAttrTzID, 3), u32attr(decoder.ThermalAttrTzTripID, 1),
			nlsend.AppendAttr(nil, decoder.ThermalAttrTzTemp, u64(85000))), nil, 1},
		{"name without its NUL", genlMsg(decoder.ThermalEventTzCreate, u32attr(decoder.ThermalAttrTzID, 3), nlsend.AppendAttr(nil, decoder.ThermalAttrTzName, []byte("acpitz"))), nil, 1},
		{"empty name", tzCreate(3, ""), nil, 1},
		{"name of THERMAL_NAME_LENGTH characters", tzCreate(3, strings.Repeat("x", decoder.ThermalNameLength)), nil, 1},
		{"CPU capabilities that cannot be framed", genlMsg(decoder.ThermalEventCPUCapabilityChange,
			nlsend.AppendAttr(nil, decoder.ThermalAttrCPUCapability|nlaFNested, []byte{200, 0, 21, 0})), nil, 1},
		{"bad message beside a good one", concat(genlMsg(decoder.ThermalEventTzEnable, nlsend.AppendAttr(nil, decoder.ThermalAttrTzID, []byte{9, 0})), tzEvent(decoder.ThermalEventTzEnable, 1)),
			[]event{{Name: "tz/enable", Object: "tz1"}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkDecode(t, decoder.NewThermal(), c.datagram, c.want, c.bad)
		})
	}
}

// TestThermalRequiredAttributes: a message without an attribute its
// command always carries is malformed, whichever it lacks.
func TestThermalRequiredAttributes(t *testing.T) {
	tz, trip := u32attr(decoder.ThermalAttrTzID, 3), u32attr(decoder.ThermalAttrTzTripID, 1)
	temp := u32attr(decoder.ThermalAttrTzTemp, 85000)
	cdev := u32attr(decoder.ThermalAttrCdevID, 2)
	for _, c := range []struct {
		cmd   uint8
		attrs [][]byte
	}{
		{decoder.ThermalSamplingTemp, [][]byte{tz, temp}},
		{decoder.ThermalEventTzCreate, [][]byte{tz, strAttr(decoder.ThermalAttrTzName, "acpitz")}},
		{decoder.ThermalEventTzDelete, [][]byte{tz}},
		{decoder.ThermalEventTzDisable, [][]byte{tz}},
		{decoder.ThermalEventTzEnable, [][]byte{tz}},
		{decoder.ThermalEventTzTripUp, [][]byte{tz, trip, temp}},
		{decoder.ThermalEventTzTripDown, [][]byte{tz, trip, temp}},
		{decoder.ThermalEventTzTripChange, [][]byte{tz, trip, u32attr(decoder.ThermalAttrTzTripType, 1),
			u32attr(decoder.ThermalAttrTzTripTemp, 1), u32attr(decoder.ThermalAttrTzTripHyst, 1)}},
		{decoder.ThermalEventTzTripAdd, [][]byte{tz, trip, u32attr(decoder.ThermalAttrTzTripType, 1),
			u32attr(decoder.ThermalAttrTzTripTemp, 1), u32attr(decoder.ThermalAttrTzTripHyst, 1)}},
		{decoder.ThermalEventTzTripDelete, [][]byte{tz, trip}},
		{decoder.ThermalEventCdevAdd, [][]byte{cdev, strAttr(decoder.ThermalAttrCdevName, "Fan"), u32attr(decoder.ThermalAttrCdevMaxState, 1)}},
		{decoder.ThermalEventCdevDelete, [][]byte{cdev}},
		{decoder.ThermalEventCdevStateUpdate, [][]byte{cdev, u32attr(decoder.ThermalAttrCdevCurState, 1)}},
		{decoder.ThermalEventTzGovChange, [][]byte{tz, strAttr(decoder.ThermalAttrGovName, "user_space")}},
		{decoder.ThermalEventCPUCapabilityChange, [][]byte{nlsend.AppendAttr(nil, decoder.ThermalAttrCPUCapability|nlaFNested, nil)}},
		{decoder.ThermalEventThresholdAdd, [][]byte{tz, u32attr(decoder.ThermalAttrThresholdTemp, 1), u32attr(decoder.ThermalAttrThresholdDirection, 1)}},
		{decoder.ThermalEventThresholdDelete, [][]byte{tz, u32attr(decoder.ThermalAttrThresholdTemp, 1), u32attr(decoder.ThermalAttrThresholdDirection, 1)}},
		{decoder.ThermalEventThresholdFlush, [][]byte{tz}},
		{decoder.ThermalEventThresholdUp, [][]byte{tz, u32attr(decoder.ThermalAttrTzPrevTemp, 1), temp}},
		{decoder.ThermalEventThresholdDown, [][]byte{tz, u32attr(decoder.ThermalAttrTzPrevTemp, 1), temp}},
	} {
		d := decoder.NewThermal()
		if evs, bad := d.Decode(nil, genlMsg(c.cmd, c.attrs...)); len(evs) != 1 || bad != 0 {
			t.Errorf("command %d with all its attributes: %d events, %d malformed", c.cmd, len(evs), bad)
		}
		for i := range c.attrs {
			without := append(append([][]byte(nil), c.attrs[:i]...), c.attrs[i+1:]...)
			if evs, bad := d.Decode(nil, genlMsg(c.cmd, without...)); len(evs) != 0 || bad != 1 {
				t.Errorf("command %d without attribute %d: %d events, %d malformed, want 0 and 1", c.cmd, i, len(evs), bad)
			}
		}
	}
}

// TestThermalNames: the names that zone creations and cooling device
// additions carry are added to the payloads of later events about them,
// until they are deleted.
func TestThermalNames(t *testing.T) {
	d := decoder.NewThermal()
	for i, c := range []struct {
		datagram []byte
		want     event
	}{
		{tripCrossed(decoder.ThermalEventTzTripUp, 3, 1, 85000), event{Name: "trip/up", Object: "tz3/trip1", Value: 85, HasValue: true}},
		{tzCreate(3, "x86_pkg_temp"), event{Name: "tz/create", Object: "tz3", Payload: "type=x86_pkg_temp"}},
		{tripCrossed(decoder.ThermalEventTzTripUp, 3, 1, 85000), event{Name: "trip/up", Object: "tz3/trip1", Value: 85, HasValue: true, Payload: "type=x86_pkg_temp"}},
		{tripAdd(decoder.ThermalEventTzTripChange, 3, 1, decoder.ThermalTripCritical, 100000, 0),
			event{Name: "trip/change", Object: "tz3/trip1", Value: 100, HasValue: true, Payload: "type=x86_pkg_temp trip_type=critical hysteresis=0"}},
		{genlMsg(decoder.ThermalEventTzGovChange, u32attr(decoder.ThermalAttrTzID, 3), strAttr(decoder.ThermalAttrGovName, "power_allocator")),
			event{Name: "tz/governor", Object: "tz3", Payload: "type=x86_pkg_temp governor=power_allocator"}},
		{thresholdCrossed(decoder.ThermalEventThresholdUp, 3, 60000, 61000), event{Name: "threshold/up", Object: "tz3", Value: 61, HasValue: true, Payload: "type=x86_pkg_temp previous=60"}},
		{sample(3, 50000), event{Name: "tz/temperature", Object: "tz3", Value: 50, HasValue: true, Payload: "type=x86_pkg_temp"}},
		{tripCrossed(decoder.ThermalEventTzTripUp, 4, 0, 85000), event{Name: "trip/up", Object: "tz4/trip0", Value: 85, HasValue: true}},
		{tzCreate(3, "acpitz"), event{Name: "tz/create", Object: "tz3", Payload: "type=acpitz"}},
		{tzEvent(decoder.ThermalEventTzDisable, 3), event{Name: "tz/disable", Object: "tz3", Payload: "type=acpitz"}},
		{tzEvent(decoder.ThermalEventTzDelete, 3), event{Name: "tz/delete", Object: "tz3", Payload: "type=acpitz", Gone: "tz3"}},
		{tripCrossed(decoder.ThermalEventTzTripDown, 3, 1, 80000), event{Name: "trip/down", Object: "tz3/trip1", Value: 80, HasValue: true}},
		{cdevAdd(0, "Fan", 1), event{Name: "cdev/add", Object: "cdev0", Value: 1, HasValue: true, Payload: "type=Fan"}},
		{cdevUpdate(0, 1), event{Name: "cdev/update", Object: "cdev0", Value: 1, HasValue: true, Payload: "type=Fan"}},
		{genlMsg(decoder.ThermalEventCdevDelete, u32attr(decoder.ThermalAttrCdevID, 0)), event{Name: "cdev/delete", Object: "cdev0", Payload: "type=Fan", Gone: "cdev0"}},
		{cdevUpdate(0, 0), event{Name: "cdev/update", Object: "cdev0", Value: 0, HasValue: true}},
	} {
		got, bad := d.Decode(nil, c.datagram)
		if diff := cmp.Diff([]event{c.want}, toEvents(got)); diff != "" || bad != 0 {
			t.Errorf("message %d: %d malformed, unexpected events (-want +got):\n%s", i, bad, diff)
		}
	}
}

// TestThermalNamesBound: a decoder remembers 4096 zone names, and the
// names of zones created beyond them are not kept.
func TestThermalNamesBound(t *testing.T) {
	d := decoder.NewThermal()
	for i := range uint32(5000) {
		d.Decode(nil, tzCreate(i, fmt.Sprintf("z%d", i)))
	}
	for _, c := range []struct {
		tz   uint32
		want string
	}{{0, "type=z0"}, {4095, "type=z4095"}, {4096, ""}, {4999, ""}} {
		evs, _ := d.Decode(nil, tzEvent(decoder.ThermalEventTzEnable, c.tz))
		if len(evs) != 1 || string(evs[0].Payload) != c.want {
			t.Errorf("zone %d: events %v, want payload %q", c.tz, toEvents(evs), c.want)
		}
	}
	// A deleted zone makes room for another.
	d.Decode(nil, tzEvent(decoder.ThermalEventTzDelete, 0))
	d.Decode(nil, tzCreate(4999, "late"))
	if evs, _ := d.Decode(nil, tzEvent(decoder.ThermalEventTzEnable, 4999)); len(evs) != 1 || string(evs[0].Payload) != "type=late" {
		t.Errorf("zone 4999 after a deletion: events %v, want payload type=late", toEvents(evs))
	}
}

// TestThermalBatch: each event of a batch keeps its own object and
// payload.
func TestThermalBatch(t *testing.T) {
	d := decoder.NewThermal()
	events, _ := d.Decode(nil, tzCreate(1, "a"))
	events, _ = d.Decode(events, concat(tripCrossed(decoder.ThermalEventTzTripUp, 1, 2, 70000), tzCreate(22, "bb")))
	events, _ = d.Decode(events, cdevAdd(333, "ccc", 1))
	want := []event{
		{Name: "tz/create", Object: "tz1", Payload: "type=a"},
		{Name: "trip/up", Object: "tz1/trip2", Value: 70, HasValue: true, Payload: "type=a"},
		{Name: "tz/create", Object: "tz22", Payload: "type=bb"},
		{Name: "cdev/add", Object: "cdev333", Value: 1, HasValue: true, Payload: "type=ccc"},
	}
	if diff := cmp.Diff(want, toEvents(events)); diff != "" {
		t.Fatalf("unexpected batch (-want +got):\n%s", diff)
	}
}

func TestNewThermal(t *testing.T) {
	for _, genl := range []bool{false, true} {
		d, err := decoder.New("thermal", decoder.Options{Genl: genl})
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, d, tzCreate(1, "acpitz"), []event{{Name: "tz/create", Object: "tz1", Payload: "type=acpitz"}}, 0)
	}
}

func FuzzThermal(f *testing.F) {
	f.Add(tzCreate(3, "acpitz"))
	f.Add(tripCrossed(decoder.ThermalEventTzTripUp, 3, 1, 85000))
	f.Add(tripAdd(decoder.ThermalEventTzTripAdd, 2, 4, 1, 95000, 2000))
	f.Add(cdevAdd(2, "Processor", 3))
	f.Add(cpuCaps(0, 1))
	f.Add(thresholdSet(decoder.ThermalEventThresholdAdd, 3, 70000, 3))
	f.Add(concat(tzCreate(1, "a"), tzEvent(decoder.ThermalEventTzDelete, 1)))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, datagram []byte) {
		d := decoder.NewThermal()
		events, bad := d.Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		for _, e := range events {
			if len(e.Name) == 0 {
				t.Fatal("event without a name")
			}
			if o := string(e.Object); o != "" && !strings.HasPrefix(o, "tz") && !strings.HasPrefix(o, "cdev") {
				t.Fatalf("object %q", o)
			}
		}
		// A second batch on the same decoder decodes the same.
		again, bad2 := d.Decode(nil, datagram)
		if len(again) != len(events) || bad2 != bad {
			t.Fatalf("second decode: %d events, %d malformed; first %d, %d", len(again), bad2, len(events), bad)
		}
	})
}

func BenchmarkThermalDecode(b *testing.B) {
	d := decoder.NewThermal()
	d.Decode(nil, tzCreate(3, "x86_pkg_temp"))
	d.Decode(nil, cdevAdd(2, "Processor", 3))
	benchmarkDecode(b, d,
		tripCrossed(decoder.ThermalEventTzTripUp, 3, 1, 85000),
		cdevUpdate(2, 1),
		sample(3, 84000),
	)
}
