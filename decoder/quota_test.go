package decoder_test

import (
	"testing"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// quotaWarning describes a warning as quota_send_warning (fs/quota/netlink.c)
// sends it.
type quotaWarning struct {
	qtype, warning, major, minor uint32
	excessID, causedID           uint64
	// pad puts QUOTA_NL_A_PAD before the 64-bit attributes, as
	// nla_put_u64_64bit does on architectures without efficient unaligned
	// access.
	pad bool
}

// attrs returns the warning's attributes in the kernel's order.
func (w quotaWarning) attrs() [][]byte {
	u64attr := func(typ uint16, v uint64) []byte {
		a := nlsend.AppendAttr(nil, typ, u64(v))
		if w.pad {
			a = concat(nlsend.AppendAttr(nil, decoder.QuotaAttrPad, nil), a)
		}
		return a
	}
	return [][]byte{
		u32attr(decoder.QuotaAttrQtype, w.qtype),
		u64attr(decoder.QuotaAttrExcessID, w.excessID),
		u32attr(decoder.QuotaAttrWarning, w.warning),
		u32attr(decoder.QuotaAttrDevMajor, w.major),
		u32attr(decoder.QuotaAttrDevMinor, w.minor),
		u64attr(decoder.QuotaAttrCausedID, w.causedID),
	}
}

func (w quotaWarning) msg() []byte {
	return genlMsg(decoder.QuotaCmdWarning, w.attrs()...)
}

func TestQuota(t *testing.T) {
	soft := quotaWarning{qtype: decoder.QuotaTypeUser, warning: decoder.QuotaBSoftWarn, major: 8, minor: 1, excessID: 1000, causedID: 1000}
	wrongSize := soft.attrs()
	wrongSize[1] = u32attr(decoder.QuotaAttrExcessID, 1000)
	wrongMinor := soft.attrs()
	wrongMinor[4] = nlsend.AppendAttr(nil, decoder.QuotaAttrDevMinor, u64(1))
	for _, c := range []struct {
		name     string
		datagram []byte
		want     []event
		bad      int
	}{
		{"block soft limit", soft.msg(),
			[]event{{Name: "block_soft_limit", Object: "8:1", Payload: "type=user id=1000 caused_by=1000"}}, 0},
		{"inode hard limit of a group, padded", quotaWarning{qtype: decoder.QuotaTypeGroup, warning: decoder.QuotaIHardWarn, major: 253, minor: 17, excessID: 100, causedID: 1001, pad: true}.msg(),
			[]event{{Name: "inode_hard_limit", Object: "253:17", Payload: "type=group id=100 caused_by=1001"}}, 0},
		{"project, below the soft limit", quotaWarning{qtype: decoder.QuotaTypeProject, warning: decoder.QuotaBSoftBelow, major: 7, minor: 0, excessID: 42}.msg(),
			[]event{{Name: "block_below_soft_limit", Object: "7:0", Payload: "type=project id=42 caused_by=0"}}, 0},
		{"a later kernel's quota type", quotaWarning{qtype: 5, warning: decoder.QuotaBHardWarn, major: 8, minor: 2, excessID: 4294967295, causedID: 65534}.msg(),
			[]event{{Name: "block_hard_limit", Object: "8:2", Payload: "type=5 id=4294967295 caused_by=65534"}}, 0},
		{"unknown attributes skipped", genlMsg(decoder.QuotaCmdWarning, append(soft.attrs(), u32attr(99, 1))...),
			[]event{{Name: "block_soft_limit", Object: "8:1", Payload: "type=user id=1000 caused_by=1000"}}, 0},
		{"two messages", concat(soft.msg(), quotaWarning{warning: decoder.QuotaBHardWarn, major: 8, minor: 1, excessID: 1000, causedID: 1000}.msg()),
			[]event{
				{Name: "block_soft_limit", Object: "8:1", Payload: "type=user id=1000 caused_by=1000"},
				{Name: "block_hard_limit", Object: "8:1", Payload: "type=user id=1000 caused_by=1000"},
			}, 0},

		{"no generic netlink header", nlsend.AppendMessage(nil, genlFamilyID, 0, []byte{1, 1}), nil, 1},
		{"another command", genlMsg(decoder.QuotaCmdWarning+1, soft.attrs()...), nil, 1},
		{"a warning quota.h does not define", quotaWarning{warning: decoder.QuotaBSoftBelow + 1, major: 8, minor: 1}.msg(), nil, 1},
		{"32-bit excess id", genlMsg(decoder.QuotaCmdWarning, wrongSize...), nil, 1},
		{"64-bit minor", genlMsg(decoder.QuotaCmdWarning, wrongMinor...), nil, 1},
		{"attribute length past the message", genlMsg(decoder.QuotaCmdWarning, rawAttr(200, decoder.QuotaAttrQtype, u32(0))), nil, 1},
		{"truncated attribute header", genlMsg(decoder.QuotaCmdWarning, append(soft.attrs(), []byte{8, 0})...), nil, 1},
		{"bad message beside a good one", concat(genlMsg(decoder.QuotaCmdWarning, wrongSize...), soft.msg()),
			[]event{{Name: "block_soft_limit", Object: "8:1", Payload: "type=user id=1000 caused_by=1000"}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkDecode(t, decoder.NewQuota(), c.datagram, c.want, c.bad)
		})
	}
}

// TestQuotaWarnings names every warning quota.h defines.
func TestQuotaWarnings(t *testing.T) {
	want := map[uint32]string{
		decoder.QuotaNoWarn:        "none",
		decoder.QuotaIHardWarn:     "inode_hard_limit",
		decoder.QuotaISoftLongWarn: "inode_grace_expired",
		decoder.QuotaISoftWarn:     "inode_soft_limit",
		decoder.QuotaBHardWarn:     "block_hard_limit",
		decoder.QuotaBSoftLongWarn: "block_grace_expired",
		decoder.QuotaBSoftWarn:     "block_soft_limit",
		decoder.QuotaIHardBelow:    "inode_below_hard_limit",
		decoder.QuotaISoftBelow:    "inode_below_soft_limit",
		decoder.QuotaBHardBelow:    "block_below_hard_limit",
		decoder.QuotaBSoftBelow:    "block_below_soft_limit",
	}
	for w, name := range want {
		evs, bad := decoder.NewQuota().Decode(nil, quotaWarning{warning: w, major: 8, minor: 1}.msg())
		if len(evs) != 1 || bad != 0 || string(evs[0].Name) != name {
			t.Errorf("warning %d: %v, %d malformed; want %s", w, toEvents(evs), bad, name)
		}
	}
}

// TestQuotaRequiredAttributes: a warning without an attribute the kernel
// always sends is malformed, whichever it lacks, and Diagnose names it.
func TestQuotaRequiredAttributes(t *testing.T) {
	attrs := quotaWarning{warning: decoder.QuotaBSoftWarn, major: 8, minor: 1}.attrs()
	names := []string{"QTYPE (1)", "EXCESS_ID (2)", "WARNING (3)", "DEV_MAJOR (4)", "DEV_MINOR (5)", "CAUSED_ID (6)"}
	for i := range attrs {
		without := genlMsg(decoder.QuotaCmdWarning, append(append([][]byte(nil), attrs[:i]...), attrs[i+1:]...)...)
		checkDecode(t, decoder.NewQuota(), without, nil, 1)
		checkReasons(t, decoder.NewQuota(), without, "no attribute QUOTA_NL_A_"+names[i]+", which every warning carries")
	}
}

// TestQuotaBatch: each event of a batch keeps its own object and payload.
func TestQuotaBatch(t *testing.T) {
	d, err := decoder.New("quota", decoder.Options{Genl: true})
	if err != nil {
		t.Fatal(err)
	}
	events, _ := d.Decode(nil, quotaWarning{warning: decoder.QuotaBSoftWarn, major: 8, minor: 1, excessID: 1}.msg())
	events, _ = d.Decode(events, quotaWarning{warning: decoder.QuotaBSoftWarn, major: 259, minor: 12, excessID: 22}.msg())
	got := string(events[0].Object) + " " + string(events[0].Payload) + "," + string(events[1].Object) + " " + string(events[1].Payload)
	if want := "8:1 type=user id=1 caused_by=0,259:12 type=user id=22 caused_by=0"; got != want {
		t.Fatalf("batch %q, want %q", got, want)
	}
}

func FuzzQuota(f *testing.F) {
	f.Add(quotaWarning{warning: decoder.QuotaBSoftWarn, major: 8, minor: 1, excessID: 1000, causedID: 1000}.msg())
	f.Add(quotaWarning{warning: decoder.QuotaIHardWarn, major: 8, minor: 1, pad: true}.msg())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := decoder.NewQuota().Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		for _, e := range events {
			if len(e.Name) == 0 || len(e.Object) < 3 || e.HasValue {
				t.Fatalf("event %q about %q, value %t", e.Name, e.Object, e.HasValue)
			}
		}
	})
}

func BenchmarkQuotaDecode(b *testing.B) {
	benchmarkDecode(b, decoder.NewQuota(),
		quotaWarning{qtype: decoder.QuotaTypeUser, warning: decoder.QuotaBSoftWarn, major: 8, minor: 1, excessID: 1000, causedID: 1000}.msg())
}
