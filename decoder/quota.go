package decoder

import (
	"math/bits"
	"strconv"
)

// The kernel's disk quota family, as include/uapi/linux/quota.h defines it
// (QUOTA_NL_*; the family's and group's names are in fs/quota/netlink.c).
// A test checks these against the header. The family exists in the initial
// network namespace only, and reports the filesystems of every mount
// namespace, with ids as the initial user namespace sees them.
const (
	// QuotaGenlFamily is the family's name.
	QuotaGenlFamily = "VFS_DQUOT"
	// QuotaGenlGroup is its one multicast group.
	QuotaGenlGroup = "events"
	// QuotaCmdWarning is the command of every message
	// (QUOTA_NL_C_WARNING).
	QuotaCmdWarning = 1

	// Attributes (QUOTA_NL_A_*): the quota type, u32; the id over the
	// limit, u64; the warning, u32; the device's major and minor, u32; the
	// uid of the process that caused it, u64; padding for the u64s.
	QuotaAttrQtype    = 1
	QuotaAttrExcessID = 2
	QuotaAttrWarning  = 3
	QuotaAttrDevMajor = 4
	QuotaAttrDevMinor = 5
	QuotaAttrCausedID = 6
	QuotaAttrPad      = 7

	// Quota types (USRQUOTA, GRPQUOTA, PRJQUOTA).
	QuotaTypeUser    = 0
	QuotaTypeGroup   = 1
	QuotaTypeProject = 2
)

// Warnings (QUOTA_NL_*).
const (
	QuotaNoWarn        = 0
	QuotaIHardWarn     = 1
	QuotaISoftLongWarn = 2
	QuotaISoftWarn     = 3
	QuotaBHardWarn     = 4
	QuotaBSoftLongWarn = 5
	QuotaBSoftWarn     = 6
	QuotaIHardBelow    = 7
	QuotaISoftBelow    = 8
	QuotaBHardBelow    = 9
	QuotaBSoftBelow    = 10
)

const (
	quotaAttrCount    = QuotaAttrPad + 1
	quotaWarningCount = QuotaBSoftBelow + 1
	// quotaAttrsRequired flags the attributes of every warning.
	quotaAttrsRequired = 1<<QuotaAttrQtype | 1<<QuotaAttrExcessID | 1<<QuotaAttrWarning |
		1<<QuotaAttrDevMajor | 1<<QuotaAttrDevMinor | 1<<QuotaAttrCausedID
)

// quotaWarnings are the event names by warning.
var quotaWarnings = [quotaWarningCount][]byte{
	QuotaNoWarn:        []byte("none"),
	QuotaIHardWarn:     []byte("inode_hard_limit"),
	QuotaISoftLongWarn: []byte("inode_grace_expired"),
	QuotaISoftWarn:     []byte("inode_soft_limit"),
	QuotaBHardWarn:     []byte("block_hard_limit"),
	QuotaBSoftLongWarn: []byte("block_grace_expired"),
	QuotaBSoftWarn:     []byte("block_soft_limit"),
	QuotaIHardBelow:    []byte("inode_below_hard_limit"),
	QuotaISoftBelow:    []byte("inode_below_soft_limit"),
	QuotaBHardBelow:    []byte("block_below_hard_limit"),
	QuotaBSoftBelow:    []byte("block_below_soft_limit"),
}

// quotaTypes are the quota types' names.
var quotaTypes = [QuotaTypeProject + 1]string{
	QuotaTypeUser:    "user",
	QuotaTypeGroup:   "group",
	QuotaTypeProject: "project",
}

// Quota decodes the kernel's disk quota warnings. The warning is the
// event's name (block_soft_limit, block_hard_limit, block_grace_expired,
// block_below_soft_limit, block_below_hard_limit, and the same for
// inode_), the filesystem's device its object, as major:minor ("8:1"),
// and the payload says whose quota it is and who caused the warning:
//
//	block_soft_limit  7:0  type=user id=1000 caused_by=1000
//
// Quota warnings have no value. A message without one of the attributes
// the kernel always sends, with a number of the wrong size, or with a
// warning quota.h does not define, is malformed.
//
// Objects and payloads are built in the decoder's own memory (see Genl).
type Quota struct {
	faults
	buf []byte
}

// NewQuota returns a quota warning decoder.
func NewQuota() *Quota {
	return &Quota{}
}

// Decode implements Decoder.
func (d *Quota) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return decodeMessages(events, datagram, d)
}

func (d *Quota) diagnose(datagram []byte) []Problem {
	return diagnoseEach(datagram, NewQuota())
}

// quotaAttrNames are quota.h's names of the attributes.
var quotaAttrNames = attrNames{
	QuotaAttrQtype:    "QUOTA_NL_A_QTYPE",
	QuotaAttrExcessID: "QUOTA_NL_A_EXCESS_ID",
	QuotaAttrWarning:  "QUOTA_NL_A_WARNING",
	QuotaAttrDevMajor: "QUOTA_NL_A_DEV_MAJOR",
	QuotaAttrDevMinor: "QUOTA_NL_A_DEV_MINOR",
	QuotaAttrCausedID: "QUOTA_NL_A_CAUSED_ID",
	QuotaAttrPad:      "QUOTA_NL_A_PAD",
}

func (d *Quota) decodeMessage(ev *Event, m message) bool {
	cmd, ok := d.genlCommand(m)
	if !ok {
		return false
	}
	if cmd != QuotaCmdWarning {
		return d.fail(m, faultf("generic netlink command %d is not QUOTA_NL_C_WARNING (%d)", int(cmd), QuotaCmdWarning))
	}
	var (
		has uint32
		v   [quotaAttrCount]uint64
	)
	var ad attrDecoder
	d.attrs(&ad, m, genlHeaderLen, quotaAttrNames)
	for typ, a := range ad.All {
		switch t := typ & nlaTypeMask; t {
		case QuotaAttrQtype, QuotaAttrWarning, QuotaAttrDevMajor, QuotaAttrDevMinor:
			v[t] = uint64(ad.Uint32(a))
		case QuotaAttrExcessID, QuotaAttrCausedID:
			v[t] = ad.Uint64(a)
		default:
			// QuotaAttrPad, or a later kernel's.
			continue
		}
		has |= 1 << (typ & nlaTypeMask)
	}
	if ad.Failed() {
		return d.fail(m, ad.Err())
	}
	if missing := quotaAttrsRequired &^ has; missing != 0 {
		return d.fail(m, attrFaultf(quotaAttrNames, uint16(bits.TrailingZeros32(missing)), "no attribute %s, which every warning carries"))
	}
	if w := v[QuotaAttrWarning]; w >= quotaWarningCount {
		return d.fail(m, faultf("warning %d is not one quota.h defines (0-%d)", int(w), quotaWarningCount-1))
	}
	ev.Name = quotaWarnings[v[QuotaAttrWarning]]

	start := len(d.buf)
	d.buf = strconv.AppendUint(d.buf, v[QuotaAttrDevMajor], 10)
	d.buf = append(d.buf, ':')
	d.buf = strconv.AppendUint(d.buf, v[QuotaAttrDevMinor], 10)
	ev.Object = d.buf[start:len(d.buf):len(d.buf)]

	start = len(d.buf)
	d.buf = append(d.buf, "type="...)
	if t := v[QuotaAttrQtype]; t < uint64(len(quotaTypes)) {
		d.buf = append(d.buf, quotaTypes[t]...)
	} else {
		d.buf = strconv.AppendUint(d.buf, t, 10)
	}
	d.buf = append(d.buf, " id="...)
	d.buf = strconv.AppendUint(d.buf, v[QuotaAttrExcessID], 10)
	d.buf = append(d.buf, " caused_by="...)
	d.buf = strconv.AppendUint(d.buf, v[QuotaAttrCausedID], 10)
	ev.Payload = d.buf[start:len(d.buf):len(d.buf)]
	return true
}
