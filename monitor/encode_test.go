package monitor

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// encodeTime is the time of the lines of the encoder's tests: the text
// format shows it to the microsecond in its own zone, JSON to the
// nanosecond in UTC.
var encodeTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("", 2*3600))

const (
	textTime = "2024-05-06T07:08:09.123456+02:00"
	jsonTime = `{"time":"2024-05-06T05:08:09.123456789Z"`
)

func TestEncoderEvent(t *testing.T) {
	tests := []struct {
		name       string
		source     string
		ev         decoder.Event
		text, json string
	}{
		{
			name: "value", source: "users",
			ev:   decoder.Event{Name: []byte("tick"), Value: 42, HasValue: true, Payload: []byte("42")},
			text: `users tick value=42 payload="42"`,
			json: `,"source":"users","event":"tick","object":"","value":42,"payload":"42"}`,
		},
		{
			name: "no value, empty payload", source: "users",
			ev:   decoder.Event{Name: []byte("17")},
			text: `users 17 payload=""`,
			json: `,"source":"users","event":"17","object":"","payload":""}`,
		},
		{
			name: "object and sequence number", source: "kev",
			ev: decoder.Event{
				Name: []byte("tick"), Object: []byte("my dev"), Value: 6, HasValue: true, Payload: []byte("b"),
				HasSeq: true, Seq: 5, Instance: 7,
			},
			text: `kev tick object="my dev" value=6 payload="b" seq=5 instance=7`,
			json: `,"source":"kev","event":"tick","object":"my dev","value":6,"payload":"b","seq":5,"instance":7}`,
		},
		{
			name: "bare object", source: "kev",
			ev:   decoder.Event{Name: []byte("link/up"), Object: []byte("eth0"), Value: -3, HasValue: true},
			text: `kev link/up object=eth0 value=-3 payload=""`,
			json: `,"source":"kev","event":"link/up","object":"eth0","value":-3,"payload":""}`,
		},
		{
			// Quoted in text, so that it is not taken for a notice.
			name: "name starting with !", source: "users",
			ev:   decoder.Event{Name: []byte("!bang")},
			text: `users "!bang" payload=""`,
			json: `,"source":"users","event":"!bang","object":"","payload":""}`,
		},
		{
			name: "name with a space and =", source: "users",
			ev:   decoder.Event{Name: []byte("two words"), Object: []byte("k=v"), Payload: []byte("x=y")},
			text: `users "two words" object="k=v" payload="x=y"`,
			json: `,"source":"users","event":"two words","object":"k=v","payload":"x=y"}`,
		},
		{
			name: "payload not UTF-8", source: "users",
			ev:   decoder.Event{Name: []byte("17"), Payload: []byte("say \"hi\"\nbye\xff")},
			text: `users 17 payload="say \"hi\"\nbye\xff"`,
			json: `,"source":"users","event":"17","object":"","payload":"say \"hi\"\nbye\ufffd","payload_base64":"c2F5ICJoaSIKYnll/w=="}`,
		},
		{
			name: "UTF-8 payload", source: "users",
			ev:   decoder.Event{Name: []byte("18"), Payload: []byte("héllo ✓\tend")},
			text: `users 18 payload="héllo ✓\tend"`,
			json: `,"source":"users","event":"18","object":"","payload":"héllo ✓\tend"}`,
		},
		{
			name: "large and small values", source: "s",
			ev:   decoder.Event{Name: []byte("big"), Value: 1e21, HasValue: true, Payload: []byte(" -1.5e3 ")},
			text: `s big value=1e+21 payload=" -1.5e3 "`,
			json: `,"source":"s","event":"big","object":"","value":1e+21,"payload":" -1.5e3 "}`,
		},
		{
			name: "NaN", source: "s",
			ev:   decoder.Event{Name: []byte("nan"), Value: math.NaN(), HasValue: true},
			text: `s nan value=NaN payload=""`,
			json: `,"source":"s","event":"nan","object":"","value":"NaN","payload":""}`,
		},
		{
			name: "source name quoted", source: "my source",
			ev:   decoder.Event{Name: []byte("e")},
			text: `"my source" e payload=""`,
			json: `,"source":"my source","event":"e","object":"","payload":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := NewEncoder(Text, tt.source).AppendEvent(nil, encodeTime, &tt.ev)
			if want := textTime + " " + tt.text + "\n"; string(text) != want {
				t.Errorf("text:\n got %s\nwant %s", text, want)
			}
			js := NewEncoder(JSON, tt.source).AppendEvent(nil, encodeTime, &tt.ev)
			if want := jsonTime + tt.json + "\n"; string(js) != want {
				t.Errorf("JSON:\n got %s\nwant %s", js, want)
			}
			if !json.Valid(js) {
				t.Errorf("not JSON: %s", js)
			}
		})
	}
}

func TestEncoderNotice(t *testing.T) {
	tests := []struct {
		name       string
		notice     func(e *Encoder, b []byte) []byte
		text, json string
	}{
		{
			name: "no fields",
			notice: func(e *Encoder, b []byte) []byte {
				return e.EndNotice(e.AppendNotice(b, encodeTime, "down"))
			},
			text: "src !down",
			json: `,"source":"src","notice":"down"}`,
		},
		{
			name: "numbers",
			notice: func(e *Encoder, b []byte) []byte {
				b = e.AppendNotice(b, encodeTime, "gap")
				b = e.AppendUint(b, "instance", 7)
				b = e.AppendUint(b, "missing", 2)
				b = e.AppendUint(b, "seq", math.MaxUint64)
				return e.EndNotice(b)
			},
			text: "src !gap instance=7 missing=2 seq=18446744073709551615",
			json: `,"source":"src","notice":"gap","instance":7,"missing":2,"seq":18446744073709551615}`,
		},
		{
			name: "protocol and groups",
			notice: func(e *Encoder, b []byte) []byte {
				b = e.AppendNotice(b, encodeTime, "up")
				b = e.AppendUint(b, "protocol", 0)
				b = e.AppendUint32s(b, "groups", []uint32{1, 3})
				b = e.AppendUint(b, "groups_joined", 2)
				return e.EndNotice(b)
			},
			text: "src !up protocol=0 groups=1,3 groups_joined=2",
			json: `,"source":"src","notice":"up","protocol":0,"groups":[1,3],"groups_joined":2}`,
		},
		{
			name: "family and group names",
			notice: func(e *Encoder, b []byte) []byte {
				b = e.AppendNotice(b, encodeTime, "down")
				b = e.AppendString(b, "family", "kevent_nosuch")
				b = e.AppendStrings(b, "groups", []string{"events", "two words"})
				return e.EndNotice(b)
			},
			text: `src !down family=kevent_nosuch groups=events,"two words"`,
			json: `,"source":"src","notice":"down","family":"kevent_nosuch","groups":["events","two words"]}`,
		},
		{
			name: "empty lists",
			notice: func(e *Encoder, b []byte) []byte {
				b = e.AppendNotice(b, encodeTime, "up")
				b = e.AppendStrings(b, "names", nil)
				b = e.AppendUint32s(b, "groups", nil)
				return e.EndNotice(b)
			},
			text: "src !up names= groups=",
			json: `,"source":"src","notice":"up","names":[],"groups":[]}`,
		},
		{
			name: "decode error",
			notice: func(e *Encoder, b []byte) []byte {
				b = e.AppendNotice(b, encodeTime, "decode_error")
				b = e.AppendUint(b, "bytes", 4)
				return e.EndDecodeError(b, []decoder.Problem{{Offset: 0, Reason: "short"}, {Offset: 2, Reason: `"bad"`}}, []byte{1, 2, 0xab, 0xff})
			},
			text: "src !decode_error bytes=4\n" +
				"  at byte 0: short\n" +
				"  at byte 2: \"bad\"\n" +
				"  00000000  01 02 ab ff                                       |....|",
			json: `,"source":"src","notice":"decode_error","bytes":4,"problems":[{"offset":0,"reason":"short"},{"offset":2,"reason":"\"bad\""}],"hex":"0102abff"}`,
		},
		{
			name: "decode error of a datagram not read",
			notice: func(e *Encoder, b []byte) []byte {
				b = e.AppendNotice(b, encodeTime, "decode_error")
				b = e.AppendUint(b, "bytes", 70000)
				return e.EndDecodeError(b, []decoder.Problem{{Reason: "too large"}}, nil)
			},
			text: "src !decode_error bytes=70000\n  at byte 0: too large",
			json: `,"source":"src","notice":"decode_error","bytes":70000,"problems":[{"offset":0,"reason":"too large"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Appended to what is there.
			text := tt.notice(NewEncoder(Text, "src"), []byte("before\n"))
			if want := "before\n" + textTime + " " + tt.text + "\n"; string(text) != want {
				t.Errorf("text:\n got %s\nwant %s", text, want)
			}
			js := tt.notice(NewEncoder(JSON, "src"), nil)
			if want := jsonTime + tt.json + "\n"; string(js) != want {
				t.Errorf("JSON:\n got %s\nwant %s", js, want)
			}
			if !json.Valid(js) {
				t.Errorf("not JSON: %s", js)
			}
		})
	}
}

// TestEncoderDecodeErrorBound: the hex dump of a datagram stops at 256
// bytes, and the text says so.
func TestEncoderDecodeErrorBound(t *testing.T) {
	datagram := bytes.Repeat([]byte{0xab}, 300)
	problems := []decoder.Problem{{Reason: "garbage"}}
	text := string(NewEncoder(Text, "s").EndDecodeError(nil, problems, datagram))
	var want strings.Builder
	want.WriteString("\n  at byte 0: garbage\n")
	for l := range strings.Lines(hex.Dump(datagram[:256])) {
		want.WriteString("  " + l)
	}
	want.WriteString("  (the first 256 of 300 bytes)\n")
	if diff := cmp.Diff(want.String(), text); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
	js := string(NewEncoder(JSON, "s").EndDecodeError(nil, problems, datagram))
	if want := `,"problems":[{"offset":0,"reason":"garbage"}],"hex":"` + hex.EncodeToString(datagram[:256]) + "\"}\n"; js != want {
		t.Errorf("JSON:\n got %s\nwant %s", js, want)
	}
}

// TestEncoderAllocs: an event's line, printed on the receive path, is
// appended without allocating.
func TestEncoderAllocs(t *testing.T) {
	ev := decoder.Event{
		Name: []byte("tick"), Object: []byte("my dev"), Value: 6, HasValue: true, Payload: []byte("say \"hi\"\xff"),
		HasSeq: true, Seq: 5, Instance: 7,
	}
	for _, f := range []Format{Text, JSON} {
		e := NewEncoder(f, "src")
		b := make([]byte, 0, 1024)
		if n := testing.AllocsPerRun(100, func() {
			b = e.AppendEvent(b[:0], encodeTime, &ev)
			b = e.AppendNotice(b, encodeTime, "gap")
			b = e.AppendUint(b, "seq", 5)
			b = e.AppendUint32s(b, "groups", []uint32{1, 2})
			b = e.EndNotice(b)
		}); n != 0 {
			t.Errorf("format %d: %v allocations per event and notice, want 0", f, n)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []string{"", "plain", `"quoted" \ back`, "line\nbreak\r\t", "\x00\x1f\x7f", "héllo ✓", "bad \xff\xfe utf-8", "\xe2\x82", "<&>", "\u2028\u2029"}
	for i := 0; i < 2000; i++ {
		b := make([]byte, r.IntN(12))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		got := appendJSONString(nil, []byte(s))
		var dec string
		if err := json.Unmarshal(got, &dec); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: not a JSON string: %v", s, got, err)
		}
		// encoding/json turns each byte that is not UTF-8 into U+FFFD too.
		want, _ := json.Marshal(s)
		var wantDec string
		json.Unmarshal(want, &wantDec)
		if dec != wantDec {
			t.Errorf("appendJSONString(%q) decodes to %q, want %q", s, dec, wantDec)
		}
		if bytes.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("appendJSONString(%q) = %q: raw control characters", s, got)
		}
	}
}

func TestAppendTextWord(t *testing.T) {
	for in, want := range map[string]string{
		"net/change":  "net/change",
		"tick":        "tick",
		"42":          "42",
		"":            `""`,
		"two words":   `"two words"`,
		"!notice":     `"!notice"`,
		"a!b":         "a!b",
		"k=v":         `"k=v"`,
		`q"uote`:      `"q\"uote"`,
		"tab\t":       `"tab\t"`,
		"\xff":        `"\xff"`,
		"héllo":       `"héllo"`,
		`back\slash`:  `"back\\slash"`,
		"new\nline":   `"new\nline"`,
		"del\x7f":     `"del\x7f"`,
		"under_score": "under_score",
	} {
		if got := string(appendTextWord(nil, []byte(in))); got != want {
			t.Errorf("appendTextWord(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAppendNumber(t *testing.T) {
	for _, c := range []struct {
		v          float64
		text, json string
	}{
		{0, "0", "0"},
		{42, "42", "42"},
		{-1500, "-1500", "-1500"},
		{1.5, "1.5", "1.5"},
		{12345678901, "12345678901", "12345678901"},
		{1e21, "1e+21", "1e+21"},
		{1e-7, "1e-07", "1e-07"},
		{math.Inf(1), "+Inf", `"+Inf"`},
		{math.NaN(), "NaN", `"NaN"`},
	} {
		if got := string(appendNumber(nil, c.v)); got != c.text {
			t.Errorf("appendNumber(%v) = %s, want %s", c.v, got, c.text)
		}
		got := appendJSONNumber(nil, c.v)
		if string(got) != c.json || !json.Valid(got) {
			t.Errorf("appendJSONNumber(%v) = %s, want %s, valid JSON", c.v, got, c.json)
		}
	}
}
