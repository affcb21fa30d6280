package decoder_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// acpiStruct returns a struct acpi_genl_event as acpi_bus_generate_netlink_event
// fills it in: zeroed, then the strings copied in and the numbers set.
func acpiStruct(class, busID string, typ, data uint32) []byte {
	e := make([]byte, decoder.ACPIEventLen)
	copy(e[:decoder.ACPIDeviceClassLen], class)
	copy(e[decoder.ACPIDeviceClassLen:decoder.ACPIDeviceClassLen+decoder.ACPIBusIDLen], busID)
	binary.NativeEndian.PutUint32(e[decoder.ACPIEventTypeOffset:], typ)
	binary.NativeEndian.PutUint32(e[decoder.ACPIEventDataOffset:], data)
	return e
}

// acpiMsg returns the family's message: command ACPI_GENL_CMD_EVENT and the
// struct in attribute ACPI_GENL_ATTR_EVENT.
func acpiMsg(e []byte) []byte {
	return genlMsg(decoder.ACPICmdEvent, nlsend.AppendAttr(nil, decoder.ACPIAttrEvent, e))
}

func TestACPI(t *testing.T) {
	power := acpiMsg(acpiStruct("button/power", "LNXPWRBN:00", 0x80, 1))
	noNULClass := acpiStruct("", "LNXPWRBN:00", 0x80, 1)
	copy(noNULClass, strings.Repeat("c", decoder.ACPIDeviceClassLen))
	noNULBus := acpiStruct("battery", "", 0x80, 1)
	copy(noNULBus[decoder.ACPIDeviceClassLen:], strings.Repeat("b", decoder.ACPIBusIDLen))
	for _, c := range []struct {
		name     string
		datagram []byte
		want     []event
		bad      int
	}{
		{"power button", power,
			[]event{{Name: "button/power", Object: "LNXPWRBN:00", Value: 0x80, HasValue: true, Payload: "0x00000001"}}, 0},
		{"battery, longest names", acpiMsg(acpiStruct(strings.Repeat("c", 19), strings.Repeat("b", 14), 0x81, 0xdeadbeef)),
			[]event{{Name: strings.Repeat("c", 19), Object: strings.Repeat("b", 14), Value: 0x81, HasValue: true, Payload: "0xdeadbeef"}}, 0},
		{"no bus id", acpiMsg(acpiStruct("ac_adapter", "", 0x80, 0)),
			[]event{{Name: "ac_adapter", Value: 0x80, HasValue: true, Payload: "0x00000000"}}, 0},
		{"a longer struct, other attributes", genlMsg(decoder.ACPICmdEvent, nlsend.AppendAttr(nil, 2, u32(7)),
			nlsend.AppendAttr(nil, decoder.ACPIAttrEvent, append(acpiStruct("video/brightnessup", "BRTUP", 0x86, 0), 1, 2, 3, 4))),
			[]event{{Name: "video/brightnessup", Object: "BRTUP", Value: 0x86, HasValue: true, Payload: "0x00000000"}}, 0},
		{"two messages", concat(power, acpiMsg(acpiStruct("button/power", "LNXPWRBN:00", 0x80, 2))),
			[]event{
				{Name: "button/power", Object: "LNXPWRBN:00", Value: 0x80, HasValue: true, Payload: "0x00000001"},
				{Name: "button/power", Object: "LNXPWRBN:00", Value: 0x80, HasValue: true, Payload: "0x00000002"},
			}, 0},

		{"no generic netlink header", nlsend.AppendMessage(nil, genlFamilyID, 0, []byte{1, 1}), nil, 1},
		{"another command", genlMsg(decoder.ACPICmdEvent+1, nlsend.AppendAttr(nil, decoder.ACPIAttrEvent, acpiStruct("x", "y", 1, 1))), nil, 1},
		{"no event attribute", genlMsg(decoder.ACPICmdEvent, nlsend.AppendAttr(nil, 2, acpiStruct("x", "y", 1, 1))), nil, 1},
		{"struct one byte short", acpiMsg(acpiStruct("x", "y", 1, 1)[:decoder.ACPIEventLen-1]), nil, 1},
		{"empty device class", acpiMsg(acpiStruct("", "y", 1, 1)), nil, 1},
		{"device class without its NUL", acpiMsg(noNULClass), nil, 1},
		{"bus id without its NUL", acpiMsg(noNULBus), nil, 1},
		{"attribute length past the message", genlMsg(decoder.ACPICmdEvent, rawAttr(200, decoder.ACPIAttrEvent, acpiStruct("x", "y", 1, 1))), nil, 1},
		{"truncated attribute header", genlMsg(decoder.ACPICmdEvent, []byte{48, 0}), nil, 1},
		{"bad message beside a good one", concat(acpiMsg(acpiStruct("", "y", 1, 1)), power),
			[]event{{Name: "button/power", Object: "LNXPWRBN:00", Value: 0x80, HasValue: true, Payload: "0x00000001"}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkDecode(t, decoder.NewACPI(), c.datagram, c.want, c.bad)
		})
	}
}

// TestACPIBatch: each event of a batch keeps its own payload.
func TestACPIBatch(t *testing.T) {
	d := decoder.NewACPI()
	events, _ := d.Decode(nil, acpiMsg(acpiStruct("button/power", "LNXPWRBN:00", 0x80, 1)))
	events, _ = d.Decode(events, acpiMsg(acpiStruct("button/power", "LNXPWRBN:00", 0x80, 2)))
	if got := string(events[0].Payload) + "," + string(events[1].Payload); got != "0x00000001,0x00000002" {
		t.Fatalf("payloads %s", got)
	}
	d2, err := decoder.New("acpi", decoder.Options{Genl: true})
	if err != nil {
		t.Fatal(err)
	}
	checkDecode(t, d2, acpiMsg(acpiStruct("processor", "CPU0", 0x80, 0)),
		[]event{{Name: "processor", Object: "CPU0", Value: 0x80, HasValue: true, Payload: "0x00000000"}}, 0)
}

func FuzzACPI(f *testing.F) {
	f.Add(acpiMsg(acpiStruct("button/power", "LNXPWRBN:00", 0x80, 1)))
	f.Add(acpiMsg(acpiStruct("", "", 0, 0)))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := decoder.NewACPI().Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		for _, e := range events {
			if len(e.Name) == 0 || len(e.Name) >= decoder.ACPIDeviceClassLen || len(e.Object) >= decoder.ACPIBusIDLen {
				t.Fatalf("event %q about %q", e.Name, e.Object)
			}
			if !within(datagram, e.Name) || !within(datagram, e.Object) {
				t.Fatal("name or object copied out of the datagram")
			}
			if len(e.Payload) != 10 || !e.HasValue {
				t.Fatalf("payload %q, value %t", e.Payload, e.HasValue)
			}
		}
	})
}

func BenchmarkACPIDecode(b *testing.B) {
	benchmarkDecode(b, decoder.NewACPI(), acpiMsg(acpiStruct("button/power", "LNXPWRBN:00", 0x80, 1)))
}
