package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	c := Default()
	want := []Source{
		{Name: "uevent", Protocol: 15, Groups: []uint32{1}, Decoder: "uevent", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true},
		{Name: "seed", Protocol: 29, Groups: []uint32{2}, Decoder: "raw", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true},
		{Name: "kevent", Protocol: 29, Groups: []uint32{2}, Decoder: "kevent", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true},
	}
	if !reflect.DeepEqual(c.Sources, want) {
		t.Fatalf("default sources:\n got %+v\nwant %+v", c.Sources, want)
	}
}

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(`
sources:
  - name: seed
    protocol: 29
    groups: [2, 40]
    decoder: raw
    receive_buffer_bytes: 0
    max_events: 10
    payload_info: false
    event_names:
      3: hello
      16: my_event
  - name: users
    protocol: UserSock
    groups: [1]
    decoder: kevent
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{
		{Name: "seed", Protocol: 29, Groups: []uint32{2, 40}, Decoder: "raw", MaxEvents: 10, EventNames: map[uint16]string{3: "hello", 16: "my_event"}},
		{Name: "users", Protocol: 2, Groups: []uint32{1}, Decoder: "kevent", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true},
	}
	if !reflect.DeepEqual(c.Sources, want) {
		t.Fatalf("sources:\n got %+v\nwant %+v", c.Sources, want)
	}
}

func TestParseBad(t *testing.T) {
	const src = "sources:\n  - name: s\n    protocol: 2\n    groups: [1]\n    decoder: raw\n"
	tests := []struct {
		name, yaml, err string
	}{
		{"empty", "", "configuration is empty"},
		{"no sources", "sources: []\n", "no sources configured"},
		{"unknown top-level key", "sourcez: []\n", "yaml: unmarshal errors:\n  line 1: field sourcez not found in type config.Config"},
		{"unknown source key", src + "    grops: [1]\n", `line 6: unknown key "grops" in source (known keys: name, protocol, groups, decoder, receive_buffer_bytes, max_events, payload_info, event_names)`},
		{"not yaml", "sources: [\n", "yaml: line 1: did not find expected node content"},
		{"missing name", "sources:\n  - protocol: 2\n    groups: [1]\n    decoder: raw\n", "source 1: name is required"},
		{"bad name", "sources:\n  - name: 'a b'\n    protocol: 2\n    groups: [1]\n    decoder: raw\n", `source "a b": name "a b" must match ^[a-zA-Z_][a-zA-Z0-9_.-]*$`},
		{"duplicate name", src + "  - name: s\n    protocol: 2\n    groups: [2]\n    decoder: raw\n", `source "s": name used by another source`},
		{"protocol too big", "sources:\n  - name: s\n    protocol: 32\n    groups: [1]\n    decoder: raw\n", "line 3: protocol 32 out of range 0-31"},
		{"protocol negative", "sources:\n  - name: s\n    protocol: -1\n    groups: [1]\n    decoder: raw\n", "line 3: protocol -1 out of range 0-31"},
		{"unknown protocol name", "sources:\n  - name: s\n    protocol: nosuch\n    groups: [1]\n    decoder: raw\n", `line 3: unknown protocol "nosuch"`},
		{"protocol list", "sources:\n  - name: s\n    protocol: [2]\n    groups: [1]\n    decoder: raw\n", "line 3: protocol must be a number or a name"},
		{"no groups", "sources:\n  - name: s\n    protocol: 2\n    decoder: raw\n", `source "s": groups: at least one multicast group is required`},
		{"group zero", "sources:\n  - name: s\n    protocol: 2\n    groups: [0]\n    decoder: raw\n", `source "s": groups: group 0 is not a multicast group (groups are numbered from 1)`},
		{"group negative", "sources:\n  - name: s\n    protocol: 2\n    groups: [-1]\n    decoder: raw\n", "yaml: unmarshal errors:\n  line 4: cannot unmarshal !!int `-1` into uint32"},
		{"group twice", "sources:\n  - name: s\n    protocol: 2\n    groups: [3, 3]\n    decoder: raw\n", `source "s": groups: group 3 listed twice`},
		{"no decoder", "sources:\n  - name: s\n    protocol: 2\n    groups: [1]\n", `source "s": decoder is required (one of raw, uevent, kevent)`},
		{"unknown decoder", "sources:\n  - name: s\n    protocol: 2\n    groups: [1]\n    decoder: json\n", `source "s": unknown decoder "json" (one of raw, uevent, kevent)`},
		{"negative buffer", src + "    receive_buffer_bytes: -1\n", `source "s": receive_buffer_bytes -1 out of range 0-1073741824`},
		{"huge buffer", src + "    receive_buffer_bytes: 2147483648\n", `source "s": receive_buffer_bytes 2147483648 out of range 0-1073741824`},
		{"zero max_events", src + "    max_events: 0\n", `source "s": max_events 0 out of range 1-1000000`},
		{"huge max_events", src + "    max_events: 1000001\n", `source "s": max_events 1000001 out of range 1-1000000`},
		{"event_names on uevent", "sources:\n  - name: s\n    protocol: 15\n    groups: [1]\n    decoder: uevent\n    event_names: {3: x}\n", `source "s": event_names applies to the raw decoder only`},
		{"event_names bad type", src + "    event_names: {70000: x}\n", "yaml: unmarshal errors:\n  line 6: cannot unmarshal !!int `70000` into uint16"},
		{"event_names empty name", src + "    event_names: {3: ''}\n", `source "s": event_names: name "" for type 3 must be 1-128 bytes without control characters`},
		{"event_names long name", src + "    event_names: {3: " + strings.Repeat("é", 65) + "}\n", `source "s": event_names: name "` + strings.Repeat("é", 65) + `" for type 3 must be 1-128 bytes without control characters`},
		{"event_names type twice", src + "    event_names: {16: x, 0x10: y}\n", "line 6: event_names lists a message type twice"},
		{"no protocol", "sources:\n  - name: s\n    groups: [1]\n    decoder: raw\n", "line 2: source has no protocol"},
		{"null protocol", "sources:\n  - name: s\n    protocol: ~\n    groups: [1]\n    decoder: raw\n", "line 2: source has no protocol"},
		{"two documents", src + "---\nbogus: 1\n", "configuration has more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tt.err)
			}
			if err.Error() != tt.err {
				t.Fatalf("error:\n got %q\nwant %q", err.Error(), tt.err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yml")); !os.IsNotExist(err) {
		t.Fatalf("Load of a missing file: got %v, want a not-exist error", err)
	}
	p := filepath.Join(t.TempDir(), "c.yml")
	if err := os.WriteFile(p, DefaultYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Load(default file) = %+v, want the default", c)
	}
}
