package decoder

import (
	"bytes"
	"strconv"
)

// The kernel's thermal generic netlink family, as
// include/uapi/linux/thermal.h defines it (THERMAL_GENL_*, enum
// thermal_genl_attr, enum thermal_genl_event). A test checks these against
// the header. The family exists in the initial network namespace only.
const (
	// ThermalGenlFamily is the family's name (THERMAL_GENL_FAMILY_NAME).
	ThermalGenlFamily = "thermal"
	// ThermalGenlEventGroup is the multicast group of the events
	// (THERMAL_GENL_EVENT_GROUP_NAME).
	ThermalGenlEventGroup = "event"
	// ThermalGenlSamplingGroup is the multicast group of the zones'
	// temperature samples (THERMAL_GENL_SAMPLING_GROUP_NAME).
	ThermalGenlSamplingGroup = "sampling"
	// ThermalNameLength bounds zone, cooling device and governor names,
	// the NUL included (THERMAL_NAME_LENGTH).
	ThermalNameLength = 20
)

// Attributes of the thermal family (enum thermal_genl_attr). Temperatures
// are millidegrees Celsius in 32 bits, signed although the family declares
// them u32.
const (
	ThermalAttrTz                       = 1
	ThermalAttrTzID                     = 2
	ThermalAttrTzTemp                   = 3
	ThermalAttrTzTrip                   = 4
	ThermalAttrTzTripID                 = 5
	ThermalAttrTzTripType               = 6
	ThermalAttrTzTripTemp               = 7
	ThermalAttrTzTripHyst               = 8
	ThermalAttrTzMode                   = 9
	ThermalAttrTzName                   = 10
	ThermalAttrTzCdevWeight             = 11
	ThermalAttrTzGov                    = 12
	ThermalAttrTzGovName                = 13
	ThermalAttrCdev                     = 14
	ThermalAttrCdevID                   = 15
	ThermalAttrCdevCurState             = 16
	ThermalAttrCdevMaxState             = 17
	ThermalAttrCdevName                 = 18
	ThermalAttrGovName                  = 19
	ThermalAttrCPUCapability            = 20
	ThermalAttrCPUCapabilityID          = 21
	ThermalAttrCPUCapabilityPerformance = 22
	ThermalAttrCPUCapabilityEfficiency  = 23
	// The user thresholds' attributes came with Linux 6.13 (after the
	// 6.1 header the test reads). 6.13 first inserted TZ_PREV_TEMP after
	// TZ_TEMP, renumbering the attributes above; the fix that moved it
	// to the end went to 6.14 and 6.13's stable updates.
	ThermalAttrThreshold          = 24
	ThermalAttrThresholdTemp      = 25
	ThermalAttrThresholdDirection = 26
	ThermalAttrTzPrevTemp         = 27
)

// Commands of the thermal family's multicast messages: the sampling
// group's sample (enum thermal_genl_sampling) and the event group's events
// (enum thermal_genl_event).
const (
	ThermalSamplingTemp             = 0
	ThermalEventTzCreate            = 1
	ThermalEventTzDelete            = 2
	ThermalEventTzDisable           = 3
	ThermalEventTzEnable            = 4
	ThermalEventTzTripUp            = 5
	ThermalEventTzTripDown          = 6
	ThermalEventTzTripChange        = 7
	ThermalEventTzTripAdd           = 8
	ThermalEventTzTripDelete        = 9
	ThermalEventCdevAdd             = 10
	ThermalEventCdevDelete          = 11
	ThermalEventCdevStateUpdate     = 12
	ThermalEventTzGovChange         = 13
	ThermalEventCPUCapabilityChange = 14
	ThermalEventThresholdAdd        = 15 // this and the rest: Linux 6.13 and later
	ThermalEventThresholdDelete     = 16
	ThermalEventThresholdFlush      = 17
	ThermalEventThresholdUp         = 18
	ThermalEventThresholdDown       = 19
)

const (
	thermalEventCount = ThermalEventThresholdDown + 1
	thermalAttrCount  = ThermalAttrTzPrevTemp + 1
	// thermalNamesMax bounds the zone names, and the cooling device
	// names, that a decoder remembers.
	thermalNamesMax = 4096
)

// Trip point types (enum thermal_trip_type) and user threshold directions
// (THERMAL_THRESHOLD_WAY_*, Linux 6.13 and later: flags).
const (
	ThermalTripActive       = 0
	ThermalTripPassive      = 1
	ThermalTripHot          = 2
	ThermalTripCritical     = 3
	ThermalThresholdWayUp   = 0x1
	ThermalThresholdWayDown = 0x2
)

// thermalU32Attrs flags the attributes that hold one 32-bit number.
const thermalU32Attrs = 1<<ThermalAttrTzID | 1<<ThermalAttrTzTemp | 1<<ThermalAttrTzTripID |
	1<<ThermalAttrTzTripType | 1<<ThermalAttrTzTripTemp | 1<<ThermalAttrTzTripHyst |
	1<<ThermalAttrTzMode | 1<<ThermalAttrTzCdevWeight | 1<<ThermalAttrCdevID |
	1<<ThermalAttrCdevCurState | 1<<ThermalAttrCdevMaxState |
	1<<ThermalAttrThresholdTemp | 1<<ThermalAttrThresholdDirection | 1<<ThermalAttrTzPrevTemp

// thermalEventNames are the event names by command.
var thermalEventNames = [thermalEventCount][]byte{
	ThermalSamplingTemp:             []byte("tz/temperature"),
	ThermalEventTzCreate:            []byte("tz/create"),
	ThermalEventTzDelete:            []byte("tz/delete"),
	ThermalEventTzDisable:           []byte("tz/disable"),
	ThermalEventTzEnable:            []byte("tz/enable"),
	ThermalEventTzTripUp:            []byte("trip/up"),
	ThermalEventTzTripDown:          []byte("trip/down"),
	ThermalEventTzTripChange:        []byte("trip/change"),
	ThermalEventTzTripAdd:           []byte("trip/add"),
	ThermalEventTzTripDelete:        []byte("trip/delete"),
	ThermalEventCdevAdd:             []byte("cdev/add"),
	ThermalEventCdevDelete:          []byte("cdev/delete"),
	ThermalEventCdevStateUpdate:     []byte("cdev/update"),
	ThermalEventTzGovChange:         []byte("tz/governor"),
	ThermalEventCPUCapabilityChange: []byte("cpu/capability"),
	ThermalEventThresholdAdd:        []byte("threshold/add"),
	ThermalEventThresholdDelete:     []byte("threshold/delete"),
	ThermalEventThresholdFlush:      []byte("threshold/flush"),
	ThermalEventThresholdUp:         []byte("threshold/up"),
	ThermalEventThresholdDown:       []byte("threshold/down"),
}

// thermalTripTypes are the trip types' names for payloads.
var thermalTripTypes = [ThermalTripCritical + 1]string{
	ThermalTripActive:   "active",
	ThermalTripPassive:  "passive",
	ThermalTripHot:      "hot",
	ThermalTripCritical: "critical",
}

// Thermal decodes the kernel's thermal family (groups "event" and
// "sampling"). Every event is about a thermal zone or a cooling device,
// its object: "tz3" for /sys/class/thermal/thermal_zone3, "tz3/trip1" for
// one of its trip points, "cdev2" for cooling_device2. Temperatures become
// values in degrees Celsius.
//
//	tz/create, tz/delete, tz/enable, tz/disable  tz3
//	tz/governor                                  tz3        payload governor=step_wise
//	tz/temperature (sampling group)              tz3        value: the temperature
//	trip/up, trip/down                           tz3/trip1  value: the zone's temperature
//	trip/add, trip/change                        tz3/trip1  value: the trip's temperature; payload trip_type=passive hysteresis=2
//	trip/delete                                  tz3/trip1
//	cdev/add                                     cdev2      value: the maximum state
//	cdev/update                                  cdev2      value: the new state
//	cdev/delete                                  cdev2
//	cpu/capability                                          value: the CPUs whose capabilities changed
//	threshold/up, threshold/down (6.13+)         tz3        value: the temperature; payload previous=84
//	threshold/add, threshold/delete (6.13+)      tz3        value: the threshold; payload direction=up
//	threshold/flush (6.13+)                      tz3
//
// A later kernel's new event is named by its number, about the zone its
// message names if any.
//
// tz/delete, trip/delete and cdev/delete say that their object is gone
// (Event.Gone), a zone with its trip points.
//
// The objects are ids, not names: zone and cooling device names (their
// sysfs "type", such as acpitz or Processor) are not unique, and the
// events name them only when the zone or device is created, mostly at boot,
// before the exporter started. Rather than ask the family for its zones
// (THERMAL_GENL_CMD_TZ_GET_ID and CDEV_GET are requests and replies on the
// exporter's socket, outside a decoder's reach), the decoder remembers the
// names that tz/create and cdev/add carry, up to 4096 of each and until
// the zone or device is deleted, and adds them to the payload of the events
// that follow, e.g. "type=acpitz".
//
// Objects and payloads are built in the decoder's own memory, appended one
// after another while the caller appends events; a call with an empty
// events slice starts a new batch.
type Thermal struct {
	faults
	buf []byte
	// zones and cdevs are the names of zones and cooling devices by id.
	zones, cdevs map[uint32][]byte
	// unknown names the commands of a later kernel: at most 236.
	unknown map[uint8][]byte
}

// NewThermal returns a thermal decoder.
func NewThermal() *Thermal {
	return &Thermal{
		zones:   make(map[uint32][]byte),
		cdevs:   make(map[uint32][]byte),
		unknown: make(map[uint8][]byte),
	}
}

// Decode implements Decoder.
func (d *Thermal) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return decodeMessages(events, datagram, d)
}

func (d *Thermal) diagnose(datagram []byte) []Problem {
	return diagnoseEach(datagram, NewThermal())
}

// thermalAttrNames are thermal.h's names of the attributes.
var thermalAttrNames = attrNames{
	ThermalAttrTz:                       "THERMAL_GENL_ATTR_TZ",
	ThermalAttrTzID:                     "THERMAL_GENL_ATTR_TZ_ID",
	ThermalAttrTzTemp:                   "THERMAL_GENL_ATTR_TZ_TEMP",
	ThermalAttrTzTrip:                   "THERMAL_GENL_ATTR_TZ_TRIP",
	ThermalAttrTzTripID:                 "THERMAL_GENL_ATTR_TZ_TRIP_ID",
	ThermalAttrTzTripType:               "THERMAL_GENL_ATTR_TZ_TRIP_TYPE",
	ThermalAttrTzTripTemp:               "THERMAL_GENL_ATTR_TZ_TRIP_TEMP",
	ThermalAttrTzTripHyst:               "THERMAL_GENL_ATTR_TZ_TRIP_HYST",
	ThermalAttrTzMode:                   "THERMAL_GENL_ATTR_TZ_MODE",
	ThermalAttrTzName:                   "THERMAL_GENL_ATTR_TZ_NAME",
	ThermalAttrTzCdevWeight:             "THERMAL_GENL_ATTR_TZ_CDEV_WEIGHT",
	ThermalAttrTzGov:                    "THERMAL_GENL_ATTR_TZ_GOV",
	ThermalAttrTzGovName:                "THERMAL_GENL_ATTR_TZ_GOV_NAME",
	ThermalAttrCdev:                     "THERMAL_GENL_ATTR_CDEV",
	ThermalAttrCdevID:                   "THERMAL_GENL_ATTR_CDEV_ID",
	ThermalAttrCdevCurState:             "THERMAL_GENL_ATTR_CDEV_CUR_STATE",
	ThermalAttrCdevMaxState:             "THERMAL_GENL_ATTR_CDEV_MAX_STATE",
	ThermalAttrCdevName:                 "THERMAL_GENL_ATTR_CDEV_NAME",
	ThermalAttrGovName:                  "THERMAL_GENL_ATTR_GOV_NAME",
	ThermalAttrCPUCapability:            "THERMAL_GENL_ATTR_CPU_CAPABILITY",
	ThermalAttrCPUCapabilityID:          "THERMAL_GENL_ATTR_CPU_CAPABILITY_ID",
	ThermalAttrCPUCapabilityPerformance: "THERMAL_GENL_ATTR_CPU_CAPABILITY_PERFORMANCE",
	ThermalAttrCPUCapabilityEfficiency:  "THERMAL_GENL_ATTR_CPU_CAPABILITY_EFFICIENCY",
	ThermalAttrThreshold:                "THERMAL_GENL_ATTR_THRESHOLD",
	ThermalAttrThresholdTemp:            "THERMAL_GENL_ATTR_THRESHOLD_TEMP",
	ThermalAttrThresholdDirection:       "THERMAL_GENL_ATTR_THRESHOLD_DIRECTION",
	ThermalAttrTzPrevTemp:               "THERMAL_GENL_ATTR_TZ_PREV_TEMP",
}

// thermalAttrs is what one message's attributes say.
type thermalAttrs struct {
	// m is the message, of command cmd, of the decoder whose faults x
	// are.
	x   *faults
	m   message
	cmd uint8
	// has flags the attributes present, by type.
	has                      uint32
	u32                      [thermalAttrCount]uint32
	tzName, cdevName, govStr []byte
	cpus                     int
}

// parse reads a message's attributes and reports whether they are
// well-formed: framed, numbers of 4 bytes, names NUL-terminated and
// shorter than ThermalNameLength. Attributes the decoder does not know are
// skipped.
func (a *thermalAttrs) parse() bool {
	var ad attrDecoder
	a.x.attrs(&ad, a.m, genlHeaderLen, thermalAttrNames)
	for typ, v := range ad.All {
		t := typ & nlaTypeMask
		switch t {
		case ThermalAttrTzName, ThermalAttrCdevName, ThermalAttrGovName, ThermalAttrTzGovName:
			s, ok := thermalName(v)
			if !ok {
				return a.x.fail(a.m, ad.Faultf(v, "attribute %s at byte %d holds %d bytes, not a NUL-terminated name of 1-%d characters",
					len(v), ThermalNameLength-1))
			}
			switch t {
			case ThermalAttrTzName:
				a.tzName = s
			case ThermalAttrCdevName:
				a.cdevName = s
			default:
				a.govStr = s
			}
		case ThermalAttrCPUCapability:
			var ok bool
			if a.cpus, ok = a.countCPUs(&ad, v); !ok {
				return false
			}
		default:
			if t >= thermalAttrCount || thermalU32Attrs&(1<<t) == 0 {
				continue
			}
			a.u32[t] = ad.Uint32(v)
		}
		a.has |= 1 << t
	}
	if ad.Failed() {
		return a.x.fail(a.m, ad.Err())
	}
	return true
}

// countCPUs counts the CPUs of a THERMAL_GENL_ATTR_CPU_CAPABILITY nest v
// of ad's: triplets of id, performance and efficiency. It is apart so that
// the compiler inlines the walk of the message's attributes, which it does
// not with another walk in it.
func (a *thermalAttrs) countCPUs(ad *attrDecoder, v []byte) (int, bool) {
	var cr attrDecoder
	ad.Nested(&cr, v, thermalAttrNames)
	n := 0
	for typ := range cr.All {
		if typ&nlaTypeMask == ThermalAttrCPUCapabilityID {
			n++
		}
	}
	if cr.Failed() {
		return 0, a.x.fail(a.m, cr.Err())
	}
	return n, true
}

// have reports whether the message has all the attributes of types, which
// its command always carries: a message without one is malformed, and
// have fails it.
func (a *thermalAttrs) have(types ...uint16) bool {
	for _, t := range types {
		if a.has&(1<<t) == 0 {
			f := attrFaultf(thermalAttrNames, t, "no attribute %s, which every %s message (command %d) carries", int(a.cmd))
			return a.x.fail(a.m, f.quoting(thermalEventNames[a.cmd]))
		}
	}
	return true
}

// celsius converts millidegrees Celsius as the kernel sends them.
func celsius(v uint32) float64 {
	return float64(int32(v)) / 1000
}

// thermalName returns a name attribute's string.
func thermalName(v []byte) ([]byte, bool) {
	if len(v) < 2 || len(v) > ThermalNameLength || v[len(v)-1] != 0 {
		return nil, false
	}
	return cString(v), true
}

func (d *Thermal) decodeMessage(ev *Event, m message) bool {
	cmd, ok := d.genlCommand(m)
	if !ok {
		return false
	}
	// Set field by field: a composite literal is built aside and copied,
	// which measured slower.
	var a thermalAttrs
	a.x, a.m, a.cmd = &d.faults, m, cmd
	if !a.parse() {
		return false
	}
	start := len(d.buf)
	if !d.event(ev, cmd, &a) {
		d.buf = d.buf[:start]
		return false
	}
	return true
}

// event fills in ev from a message of command cmd, or reports that the
// message lacks attributes its command always carries.
func (d *Thermal) event(ev *Event, cmd uint8, a *thermalAttrs) bool {
	tz, cdev := a.u32[ThermalAttrTzID], a.u32[ThermalAttrCdevID]
	if int(cmd) >= len(thermalEventNames) {
		n, ok := d.unknown[cmd]
		if !ok {
			n = strconv.AppendUint(nil, uint64(cmd), 10)
			d.unknown[cmd] = n
		}
		ev.Name = n
		if a.has&(1<<ThermalAttrTzID) != 0 {
			ev.Object = d.zone(tz, false, 0)
		}
		return true
	}
	ev.Name = thermalEventNames[cmd]
	switch cmd {
	case ThermalSamplingTemp:
		if !a.have(ThermalAttrTzID, ThermalAttrTzTemp) {
			return false
		}
		ev.Object = d.zone(tz, false, 0)
		ev.Value, ev.HasValue = celsius(a.u32[ThermalAttrTzTemp]), true
		ev.Payload = d.payload(d.zones[tz], "", nil)
	case ThermalEventTzCreate:
		if !a.have(ThermalAttrTzID, ThermalAttrTzName) {
			return false
		}
		ev.Object = d.zone(tz, false, 0)
		ev.Payload = d.payload(a.tzName, "", nil)
		remember(d.zones, tz, a.tzName)
	case ThermalEventTzDelete, ThermalEventTzDisable, ThermalEventTzEnable, ThermalEventThresholdFlush:
		if !a.have(ThermalAttrTzID) {
			return false
		}
		ev.Object = d.zone(tz, false, 0)
		ev.Payload = d.payload(d.zones[tz], "", nil)
		if cmd == ThermalEventTzDelete {
			delete(d.zones, tz)
			ev.Gone = ev.Object
		}
	case ThermalEventTzGovChange:
		if !a.have(ThermalAttrTzID, ThermalAttrGovName) {
			return false
		}
		ev.Object = d.zone(tz, false, 0)
		ev.Payload = d.payload(d.zones[tz], "governor", a.govStr)
	case ThermalEventTzTripUp, ThermalEventTzTripDown:
		if !a.have(ThermalAttrTzID, ThermalAttrTzTripID, ThermalAttrTzTemp) {
			return false
		}
		ev.Object = d.zone(tz, true, a.u32[ThermalAttrTzTripID])
		ev.Value, ev.HasValue = celsius(a.u32[ThermalAttrTzTemp]), true
		ev.Payload = d.payload(d.zones[tz], "", nil)
	case ThermalEventTzTripAdd, ThermalEventTzTripChange:
		if !a.have(ThermalAttrTzID, ThermalAttrTzTripID, ThermalAttrTzTripType, ThermalAttrTzTripTemp, ThermalAttrTzTripHyst) {
			return false
		}
		ev.Object = d.zone(tz, true, a.u32[ThermalAttrTzTripID])
		ev.Value, ev.HasValue = celsius(a.u32[ThermalAttrTzTripTemp]), true
		start := len(d.buf)
		d.appendName(start, d.zones[tz])
		d.appendKey(start, "trip_type")
		if t := a.u32[ThermalAttrTzTripType]; t < uint32(len(thermalTripTypes)) {
			d.buf = append(d.buf, thermalTripTypes[t]...)
		} else {
			d.buf = strconv.AppendUint(d.buf, uint64(t), 10)
		}
		d.appendKey(start, "hysteresis")
		d.buf = strconv.AppendFloat(d.buf, celsius(a.u32[ThermalAttrTzTripHyst]), 'f', -1, 64)
		ev.Payload = d.since(start)
	case ThermalEventTzTripDelete:
		if !a.have(ThermalAttrTzID, ThermalAttrTzTripID) {
			return false
		}
		ev.Object = d.zone(tz, true, a.u32[ThermalAttrTzTripID])
		ev.Payload = d.payload(d.zones[tz], "", nil)
		ev.Gone = ev.Object
	case ThermalEventCdevAdd:
		if !a.have(ThermalAttrCdevID, ThermalAttrCdevName, ThermalAttrCdevMaxState) {
			return false
		}
		ev.Object = d.cdev(cdev)
		ev.Value, ev.HasValue = float64(a.u32[ThermalAttrCdevMaxState]), true
		ev.Payload = d.payload(a.cdevName, "", nil)
		remember(d.cdevs, cdev, a.cdevName)
	case ThermalEventCdevDelete:
		if !a.have(ThermalAttrCdevID) {
			return false
		}
		ev.Object = d.cdev(cdev)
		ev.Payload = d.payload(d.cdevs[cdev], "", nil)
		delete(d.cdevs, cdev)
		ev.Gone = ev.Object
	case ThermalEventCdevStateUpdate:
		if !a.have(ThermalAttrCdevID, ThermalAttrCdevCurState) {
			return false
		}
		ev.Object = d.cdev(cdev)
		ev.Value, ev.HasValue = float64(a.u32[ThermalAttrCdevCurState]), true
		ev.Payload = d.payload(d.cdevs[cdev], "", nil)
	case ThermalEventCPUCapabilityChange:
		if !a.have(ThermalAttrCPUCapability) {
			return false
		}
		ev.Value, ev.HasValue = float64(a.cpus), true
	case ThermalEventThresholdAdd, ThermalEventThresholdDelete:
		if !a.have(ThermalAttrTzID, ThermalAttrThresholdTemp, ThermalAttrThresholdDirection) {
			return false
		}
		ev.Object = d.zone(tz, false, 0)
		ev.Value, ev.HasValue = celsius(a.u32[ThermalAttrThresholdTemp]), true
		start := len(d.buf)
		d.appendName(start, d.zones[tz])
		d.appendKey(start, "direction")
		switch dir := a.u32[ThermalAttrThresholdDirection]; dir {
		case ThermalThresholdWayUp:
			d.buf = append(d.buf, "up"...)
		case ThermalThresholdWayDown:
			d.buf = append(d.buf, "down"...)
		case ThermalThresholdWayUp | ThermalThresholdWayDown:
			d.buf = append(d.buf, "both"...)
		default:
			d.buf = strconv.AppendUint(d.buf, uint64(dir), 10)
		}
		ev.Payload = d.since(start)
	case ThermalEventThresholdUp, ThermalEventThresholdDown:
		if !a.have(ThermalAttrTzID, ThermalAttrTzTemp, ThermalAttrTzPrevTemp) {
			return false
		}
		ev.Object = d.zone(tz, false, 0)
		ev.Value, ev.HasValue = celsius(a.u32[ThermalAttrTzTemp]), true
		start := len(d.buf)
		d.appendName(start, d.zones[tz])
		d.appendKey(start, "previous")
		d.buf = strconv.AppendFloat(d.buf, celsius(a.u32[ThermalAttrTzPrevTemp]), 'f', -1, 64)
		ev.Payload = d.since(start)
	}
	return true
}

// since returns what was appended to d.buf from start on, with no room to
// grow into the next event's bytes.
func (d *Thermal) since(start int) []byte {
	if len(d.buf) == start {
		return nil
	}
	return d.buf[start:len(d.buf):len(d.buf)]
}

// zone appends a zone's object, "tz3", or with a trip "tz3/trip1".
func (d *Thermal) zone(id uint32, withTrip bool, trip uint32) []byte {
	start := len(d.buf)
	d.buf = append(d.buf, "tz"...)
	d.buf = strconv.AppendUint(d.buf, uint64(id), 10)
	if withTrip {
		d.buf = append(d.buf, "/trip"...)
		d.buf = strconv.AppendUint(d.buf, uint64(trip), 10)
	}
	return d.since(start)
}

// cdev appends a cooling device's object, "cdev2".
func (d *Thermal) cdev(id uint32) []byte {
	start := len(d.buf)
	d.buf = append(d.buf, "cdev"...)
	d.buf = strconv.AppendUint(d.buf, uint64(id), 10)
	return d.since(start)
}

// payload appends "type=NAME" for a known name and "key=value" for a key,
// and returns them.
func (d *Thermal) payload(name []byte, key string, value []byte) []byte {
	start := len(d.buf)
	d.appendName(start, name)
	if key != "" {
		d.appendKey(start, key)
		d.buf = append(d.buf, value...)
	}
	return d.since(start)
}

// appendName appends "type=NAME" to the payload that starts at start, for
// a known name.
func (d *Thermal) appendName(start int, name []byte) {
	if len(name) > 0 {
		d.appendKey(start, "type")
		d.buf = append(d.buf, name...)
	}
}

// appendKey appends "key=" to the payload that starts at start, after a
// space if it has a pair already.
func (d *Thermal) appendKey(start int, key string) {
	if len(d.buf) > start {
		d.buf = append(d.buf, ' ')
	}
	d.buf = append(d.buf, key...)
	d.buf = append(d.buf, '=')
}

// remember keeps a copy of the name of id, unless thermalNamesMax are
// kept.
func remember(names map[uint32][]byte, id uint32, name []byte) {
	if old, ok := names[id]; ok && bytes.Equal(old, name) {
		return
	} else if !ok && len(names) >= thermalNamesMax {
		return
	}
	names[id] = bytes.Clone(name)
}
