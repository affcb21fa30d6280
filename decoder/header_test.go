package decoder_test

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// keventHeader is the wire format's source of truth.
const keventHeader = "../kmod/kevent_netlink.h"

var (
	cComment  = regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`)
	cEnum     = regexp.MustCompile(`(?s)\benum\s+\w*\s*\{(.*?)\}`)
	cEnumItem = regexp.MustCompile(`^(\w+)\s*(?:=\s*(\S+))?$`)
	cDefine   = regexp.MustCompile(`(?m)^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+(\S[^\n]*?)[ \t]*$`)
)

// parseHeader returns the numeric constants a C header defines: its enum
// members, counted from their explicit or implicit values, and the #defines
// whose value is an integer literal, possibly in parentheses.
func parseHeader(t *testing.T, src string) map[string]int64 {
	t.Helper()

	src = cComment.ReplaceAllString(src, " ")
	consts := make(map[string]int64)
	for _, m := range cEnum.FindAllStringSubmatch(src, -1) {
		var next int64
		for item := range strings.SplitSeq(m[1], ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			im := cEnumItem.FindStringSubmatch(item)
			if im == nil {
				t.Fatalf("cannot parse enum member %q", item)
			}
			if im[2] != "" {
				v, err := strconv.ParseInt(im[2], 0, 64)
				if err != nil {
					t.Fatalf("cannot parse value of enum member %q: %v", item, err)
				}
				next = v
			}
			consts[im[1]] = next
			next++
		}
	}
	for _, m := range cDefine.FindAllStringSubmatch(src, -1) {
		v, err := strconv.ParseInt(strings.Trim(m[2], "() \t"), 0, 64)
		if err != nil {
			// An expression, such as KEVENT_A_MAX's, or not a number.
			continue
		}
		consts[m[1]] = v
	}
	return consts
}

// TestHeaderConsistency checks the decoder's constants against
// kmod/kevent_netlink.h, so that the module and the exporter cannot drift
// apart.
func TestHeaderConsistency(t *testing.T) {
	src, err := os.ReadFile(keventHeader)
	if err != nil {
		t.Fatalf("failed to read header: %v", err)
	}
	consts := parseHeader(t, string(src))

	want := map[string]int64{
		"KEVENT_MSG_EVENT":      decoder.KeventMsgEvent,
		"KEVENT_A_UNSPEC":       0,
		"KEVENT_A_SEQ":          decoder.KeventAttrSeq,
		"KEVENT_A_INSTANCE":     decoder.KeventAttrInstance,
		"KEVENT_A_TIMESTAMP_NS": decoder.KeventAttrTimestampNS,
		"KEVENT_A_NAME":         decoder.KeventAttrName,
		"KEVENT_A_VALUE":        decoder.KeventAttrValue,
		"KEVENT_A_PAYLOAD":      decoder.KeventAttrPayload,
		"KEVENT_A_PAD":          decoder.KeventAttrPad,
		"KEVENT_NAME_MAX":       decoder.KeventNameMax,
		"KEVENT_PAYLOAD_MAX":    decoder.KeventPayloadMax,
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w := want[name]
		got, ok := consts[name]
		if !ok {
			t.Errorf("%s: not found in %s", name, keventHeader)
			continue
		}
		if got != w {
			t.Errorf("%s: header says %d, decoder says %d", name, got, w)
		}
	}

	// Every attribute the header defines must be known to the decoder, which
	// lists them above.
	for _, name := range slices.Sorted(maps.Keys(consts)) {
		if !strings.HasPrefix(name, "KEVENT_A_") {
			continue
		}
		if _, ok := want[name]; !ok && name != "KEVENT_A_MAX" {
			t.Errorf("%s: attribute in %s unknown to the decoder", name, keventHeader)
		}
	}
	if got, ok := consts["__KEVENT_A_MAX"]; !ok || got != decoder.KeventAttrPad+1 {
		t.Errorf("__KEVENT_A_MAX: want %d after the last attribute, got %d (found: %t)",
			decoder.KeventAttrPad+1, got, ok)
	}
}

func TestParseHeader(t *testing.T) {
	const src = `
#define A_DEFINE	0x20 /* comment, with = */
#define PAREN (7)
#define EXPR (A_DEFINE - 1)
enum e {
	E_ZERO, // a comment
	E_ONE,
	E_TEN = 10,	/* ten */
	E_ELEVEN,
	E_HEX = 0x10,
	E_LAST
};
enum { ANON_ZERO, ANON_ONE };
`
	want := map[string]int64{
		"A_DEFINE":  0x20,
		"PAREN":     7,
		"E_ZERO":    0,
		"E_ONE":     1,
		"E_TEN":     10,
		"E_ELEVEN":  11,
		"E_HEX":     0x10,
		"E_LAST":    0x11,
		"ANON_ZERO": 0,
		"ANON_ONE":  1,
	}
	if diff := cmp.Diff(want, parseHeader(t, src)); diff != "" {
		t.Errorf("unexpected constants (-want +got):\n%s", diff)
	}
}
