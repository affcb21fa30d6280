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

// parseHeaderStrings returns the #defines of a C header whose value is a
// string literal, unquoted.
func parseHeaderStrings(t *testing.T, src string) map[string]string {
	t.Helper()

	src = cComment.ReplaceAllString(src, " ")
	strs := make(map[string]string)
	for _, m := range cDefine.FindAllStringSubmatch(src, -1) {
		if !strings.HasPrefix(m[2], `"`) {
			continue
		}
		v, err := strconv.Unquote(m[2])
		if err != nil {
			t.Fatalf("cannot parse the string of #define %s: %q: %v", m[1], m[2], err)
		}
		strs[m[1]] = v
	}
	return strs
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
		"KEVENT_A_OBJECT":       decoder.KeventAttrObject,
		"KEVENT_NAME_MAX":       decoder.KeventNameMax,
		"KEVENT_PAYLOAD_MAX":    decoder.KeventPayloadMax,
		"KEVENT_OBJECT_MAX":     decoder.KeventObjectMax,
		"KEVENT_GENL_VERSION":   decoder.KeventGenlVersion,
		"KEVENT_CMD_UNSPEC":     0,
		"KEVENT_CMD_EVENT":      decoder.KeventCmdEvent,
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

	// Every attribute and generic netlink command the header defines must be
	// known to the decoder, which lists them above.
	for _, name := range slices.Sorted(maps.Keys(consts)) {
		switch {
		case name == "KEVENT_A_MAX" || name == "KEVENT_CMD_MAX":
		case strings.HasPrefix(name, "KEVENT_A_"):
			if _, ok := want[name]; !ok {
				t.Errorf("%s: attribute in %s unknown to the decoder", name, keventHeader)
			}
		case strings.HasPrefix(name, "KEVENT_CMD_"):
			if _, ok := want[name]; !ok {
				t.Errorf("%s: generic netlink command in %s unknown to the decoder", name, keventHeader)
			}
		}
	}
	if got, ok := consts["__KEVENT_A_MAX"]; !ok || got != decoder.KeventAttrObject+1 {
		t.Errorf("__KEVENT_A_MAX: want %d after the last attribute, got %d (found: %t)",
			decoder.KeventAttrObject+1, got, ok)
	}
	if got, ok := consts["__KEVENT_CMD_MAX"]; !ok || got != decoder.KeventCmdEvent+1 {
		t.Errorf("__KEVENT_CMD_MAX: want %d after the last command, got %d (found: %t)",
			decoder.KeventCmdEvent+1, got, ok)
	}

	// The generic netlink family's and group's names. The kernel keeps them
	// in GENL_NAMSIZ (16) bytes with the NUL.
	const genlNamSiz = 16
	strs := parseHeaderStrings(t, string(src))
	for _, c := range []struct{ name, want string }{
		{"KEVENT_GENL_NAME", decoder.KeventGenlFamily},
		{"KEVENT_GENL_MCGRP_EVENTS", decoder.KeventGenlGroup},
	} {
		got, ok := strs[c.name]
		switch {
		case !ok:
			t.Errorf("%s: no string #define in %s", c.name, keventHeader)
		case got != c.want:
			t.Errorf("%s: header says %q, decoder says %q", c.name, got, c.want)
		case got == "" || len(got) >= genlNamSiz:
			t.Errorf("%s: %q does not fit in GENL_NAMSIZ (%d) bytes with the NUL", c.name, got, genlNamSiz)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(strs)) {
		if strings.HasPrefix(name, "KEVENT_GENL_MCGRP_") && name != "KEVENT_GENL_MCGRP_EVENTS" {
			t.Errorf("%s: multicast group in %s unknown to the decoder", name, keventHeader)
		}
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

func TestParseHeaderStrings(t *testing.T) {
	const src = `
#define NAME		"kevent"	/* the family, "not this" */
#define ESCAPED "a\"b"
#define NUMBER 1
/* #define COMMENTED "no" */
#define EXPR (NAME "x")
`
	want := map[string]string{
		"NAME":    "kevent",
		"ESCAPED": `a"b`,
	}
	if diff := cmp.Diff(want, parseHeaderStrings(t, src)); diff != "" {
		t.Errorf("unexpected strings (-want +got):\n%s", diff)
	}
}
