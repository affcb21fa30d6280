package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// TestDecoderRegistry checks that a source is accepted or refused as its
// decoder's registry entry says: the protocol or families it reads, the
// groups of a decoder of one protocol, and event_names.
func TestDecoderRegistry(t *testing.T) {
	// source returns a configuration of one source of decoder d on
	// netlink (a protocol or family key and groups), with more keys.
	source := func(d, netlink, more string) string {
		return fmt.Sprintf("sources:\n  - {name: s, decoder: %s, %s%s}\n", d, netlink, more)
	}
	for _, d := range decoder.Infos() {
		t.Run(d.Name, func(t *testing.T) {
			// A source the decoder reads, and one it does not.
			var good, bad string
			switch d.Protocol {
			case decoder.AnyProtocol:
				good, bad = "protocol: 29, groups: [1]", ""
			case decoder.NoProtocol:
				good, bad = "family: fam, groups: [g]", "protocol: 16, groups: [1]"
			default:
				good = fmt.Sprintf("protocol: %d, groups: [%d]", d.Protocol, d.Groups[0].Number)
				bad = fmt.Sprintf("protocol: %d, groups: [%d]", (d.Protocol+1)%32, d.Groups[0].Number)
			}
			if _, err := Parse([]byte(source(d.Name, good, ""))); err != nil {
				t.Errorf("a source of what the decoder reads (%s): %v", good, err)
			}
			if bad != "" {
				if _, err := Parse([]byte(source(d.Name, bad, ""))); err == nil || !strings.Contains(err.Error(), "the "+d.Name+" decoder reads") {
					t.Errorf("a source of what the decoder does not read (%s): error %v, want one saying what it reads", bad, err)
				}
			}
			family := source(d.Name, "family: fam, groups: [g]", "")
			if _, err := Parse([]byte(family)); (err == nil) != d.Families {
				t.Errorf("a family source: error %v, but the registry says families: %t", err, d.Families)
			}

			if d.Protocol >= 0 && len(d.Groups) > 0 {
				// A group past the decoder's.
				other := fmt.Sprintf("protocol: %d, groups: [%d]", d.Protocol, d.Groups[len(d.Groups)-1].Number+1)
				if _, err := Parse([]byte(source(d.Name, other, ""))); err == nil || !strings.Contains(err.Error(), "groups: group") {
					t.Errorf("a group the decoder does not read (%s): error %v, want one naming the group", other, err)
				}
			}

			_, err := Parse([]byte(source(d.Name, good, ", event_names: {3: x}")))
			if d.EventNames && err != nil {
				t.Errorf("event_names: %v, but the registry says the decoder takes them", err)
			}
			if !d.EventNames && (err == nil || !strings.Contains(err.Error(), "event_names applies to the raw and genl decoders only")) {
				t.Errorf("event_names: error %v, want one naming the decoders that take them", err)
			}
		})
	}
}

func TestJoinAnd(t *testing.T) {
	for _, c := range []struct {
		words []string
		want  string
	}{
		{nil, ""},
		{[]string{"raw"}, "raw"},
		{[]string{"raw", "genl"}, "raw and genl"},
		{[]string{"raw", "genl", "x"}, "raw, genl and x"},
	} {
		if got := joinAnd(c.words); got != c.want {
			t.Errorf("joinAnd(%q) = %q, want %q", c.words, got, c.want)
		}
	}
}
