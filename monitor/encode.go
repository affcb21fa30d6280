package monitor

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// Format is an output format of the monitor.
type Format uint8

const (
	// Text is for people: a line per event or notice, starting with the
	// time and the source, its fields as key=value.
	Text Format = iota
	// JSON is for programs: a JSON object per line.
	JSON
)

const (
	// textTimeLayout is RFC 3339 with a fixed-width fraction, so that
	// columns line up.
	textTimeLayout = "2006-01-02T15:04:05.000000Z07:00"
	// hexDumpBytes bounds the hex dump of a malformed datagram.
	hexDumpBytes = 256
)

// An Encoder appends the lines the monitor prints about one source to byte
// slices, as strconv's Append functions do: the source's events, and
// notices of what the monitor detects about it. A notice is started by
// AppendNotice, takes fields, and is ended by EndNotice (or, for a decode
// error, EndDecodeError). Words in text are bare when they are printable
// ASCII without spaces, quotes, backslashes or '=', else quoted as
// strconv.Quote does, so that a line splits at spaces unambiguously; event
// names starting with '!', which marks notices, are quoted too.
//
// AppendEvent, called for each event received, does not allocate.
type Encoder struct {
	json bool
	// name is the source's name as the format prints it.
	name []byte
}

// NewEncoder returns an Encoder of the lines about the source called
// source, in format.
func NewEncoder(format Format, source string) *Encoder {
	e := &Encoder{json: format == JSON}
	if e.json {
		e.name = appendJSONString(nil, []byte(source))
	} else {
		e.name = appendTextWord(nil, []byte(source))
	}
	return e
}

// AppendEvent appends the line of ev, received at t. Text:
//
//	TIME SOURCE EVENT [object=OBJECT] [value=VALUE] payload="PAYLOAD" [seq=SEQ instance=INSTANCE]
//
// TIME is local, to the microsecond. JSON: {"time", "source", "event",
// "object", "value", "payload", "payload_base64", "seq", "instance"}, time
// in UTC to the nanosecond; value, payload_base64, seq and instance only
// when the event has them. payload_base64 is there when the payload is not
// UTF-8, which "payload" has U+FFFD for.
func (e *Encoder) AppendEvent(b []byte, t time.Time, ev *decoder.Event) []byte {
	if e.json {
		b = e.appendJSONStart(b, t)
		b = append(b, `,"event":`...)
		b = appendJSONString(b, ev.Name)
		b = append(b, `,"object":`...)
		b = appendJSONString(b, ev.Object)
		if ev.HasValue {
			b = append(b, `,"value":`...)
			b = appendJSONNumber(b, ev.Value)
		}
		b = append(b, `,"payload":`...)
		b = appendJSONString(b, ev.Payload)
		if !utf8.Valid(ev.Payload) {
			b = append(b, `,"payload_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, ev.Payload)
			b = append(b, '"')
		}
		if ev.HasSeq {
			b = append(b, `,"seq":`...)
			b = strconv.AppendUint(b, ev.Seq, 10)
			b = append(b, `,"instance":`...)
			b = strconv.AppendUint(b, ev.Instance, 10)
		}
		return append(b, "}\n"...)
	}
	b = e.appendTextStart(b, t)
	b = append(b, ' ')
	b = appendTextWord(b, ev.Name)
	if len(ev.Object) > 0 {
		b = append(b, " object="...)
		b = appendTextWord(b, ev.Object)
	}
	if ev.HasValue {
		b = append(b, " value="...)
		b = appendNumber(b, ev.Value)
	}
	b = append(b, " payload="...)
	b = strconv.AppendQuote(b, string(ev.Payload))
	if ev.HasSeq {
		b = append(b, " seq="...)
		b = strconv.AppendUint(b, ev.Seq, 10)
		b = append(b, " instance="...)
		b = strconv.AppendUint(b, ev.Instance, 10)
	}
	return append(b, '\n')
}

// AppendNotice starts the line of a notice of kind, a word such as "gap",
// at t: "TIME SOURCE !KIND" in text, a JSON object with a "notice" key
// where events have "event".
func (e *Encoder) AppendNotice(b []byte, t time.Time, kind string) []byte {
	if e.json {
		b = e.appendJSONStart(b, t)
		b = append(b, `,"notice":"`...)
		b = append(b, kind...)
		return append(b, '"')
	}
	b = e.appendTextStart(b, t)
	b = append(b, " !"...)
	return append(b, kind...)
}

// AppendUint appends a notice's field: key=v in text, "key":v in JSON.
func (e *Encoder) AppendUint(b []byte, key string, v uint64) []byte {
	return strconv.AppendUint(e.appendKey(b, key), v, 10)
}

// AppendString appends a notice's field of text.
func (e *Encoder) AppendString(b []byte, key, v string) []byte {
	return e.appendString(e.appendKey(b, key), v)
}

// AppendStrings appends a notice's field of a list of words: separated by
// commas in text, a JSON array.
func (e *Encoder) AppendStrings(b []byte, key string, v []string) []byte {
	b = e.appendListStart(e.appendKey(b, key))
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = e.appendString(b, s)
	}
	return e.appendListEnd(b)
}

// AppendUint32s appends a notice's field of a list of numbers: separated
// by commas in text, a JSON array.
func (e *Encoder) AppendUint32s(b []byte, key string, v []uint32) []byte {
	b = e.appendListStart(e.appendKey(b, key))
	for i, n := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(n), 10)
	}
	return e.appendListEnd(b)
}

// EndNotice ends a notice's line.
func (e *Encoder) EndNotice(b []byte) []byte {
	if e.json {
		return append(b, "}\n"...)
	}
	return append(b, '\n')
}

// EndDecodeError ends the notice of a datagram that did not decode, with
// the problems found in it and a hex dump of its first 256 bytes (none for
// a nil datagram, one that was not read). In JSON they are the fields
// "problems", a list of {"offset", "reason"}, and "hex". In text they
// follow the notice's line, indented by two spaces: a line per problem,
// then the dump, as hex.Dump writes it.
func (e *Encoder) EndDecodeError(b []byte, problems []decoder.Problem, datagram []byte) []byte {
	dump := datagram[:min(len(datagram), hexDumpBytes)]
	if e.json {
		b = append(b, `,"problems":[`...)
		for i, p := range problems {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"offset":`...)
			b = strconv.AppendInt(b, int64(p.Offset), 10)
			b = append(b, `,"reason":`...)
			b = appendJSONString(b, []byte(p.Reason))
			b = append(b, '}')
		}
		b = append(b, ']')
		if datagram != nil {
			b = append(b, `,"hex":"`...)
			b = hex.AppendEncode(b, dump)
			b = append(b, '"')
		}
		return append(b, "}\n"...)
	}
	b = append(b, '\n')
	for _, p := range problems {
		b = append(b, "  "...)
		b = append(b, p.String()...)
		b = append(b, '\n')
	}
	for l := range strings.Lines(hex.Dump(dump)) {
		b = append(append(b, "  "...), l...)
	}
	if len(dump) < len(datagram) {
		b = fmt.Appendf(b, "  (the first %d of %d bytes)\n", len(dump), len(datagram))
	}
	return b
}

// appendTextStart appends "TIME SOURCE".
func (e *Encoder) appendTextStart(b []byte, t time.Time) []byte {
	b = t.AppendFormat(b, textTimeLayout)
	b = append(b, ' ')
	return append(b, e.name...)
}

// appendJSONStart appends `{"time":TIME,"source":SOURCE`.
func (e *Encoder) appendJSONStart(b []byte, t time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","source":`...)
	return append(b, e.name...)
}

// appendKey starts a notice's field: " key=" in text, `,"key":` in JSON.
func (e *Encoder) appendKey(b []byte, key string) []byte {
	if e.json {
		b = append(b, `,"`...)
		b = append(b, key...)
		return append(b, `":`...)
	}
	b = append(b, ' ')
	b = append(b, key...)
	return append(b, '=')
}

func (e *Encoder) appendListStart(b []byte) []byte {
	if e.json {
		return append(b, '[')
	}
	return b
}

func (e *Encoder) appendListEnd(b []byte) []byte {
	if e.json {
		return append(b, ']')
	}
	return b
}

// appendString appends a notice's text value, quoted as the format needs.
func (e *Encoder) appendString(b []byte, s string) []byte {
	if e.json {
		return appendJSONString(b, []byte(s))
	}
	return appendTextWord(b, []byte(s))
}

// appendTextWord appends s bare when it is printable ASCII without spaces,
// quotes, backslashes or '=' and does not start with '!' (which marks
// notices), else quoted as strconv.Quote does: a text line splits at
// spaces unambiguously.
func appendTextWord(b, s []byte) []byte {
	bare := len(s) > 0 && s[0] != '!'
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=' {
			bare = false
			break
		}
	}
	if bare {
		return append(b, s...)
	}
	return strconv.AppendQuote(b, string(s))
}

// appendNumber appends v as Go's JSON encoder formats numbers: plain
// decimals, exponents only for the very small and very large.
func appendNumber(b []byte, v float64) []byte {
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendJSONNumber appends v as a JSON number, or as a string for the
// values JSON has no number for (no decoder makes them today).
func appendJSONNumber(b []byte, v float64) []byte {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.AppendQuote(b, strconv.FormatFloat(v, 'g', -1, 64))
	}
	return appendNumber(b, v)
}

// appendJSONString appends s as a JSON string. Bytes that are not UTF-8
// become U+FFFD, as encoding/json does; unlike it, '<', '>' and '&' stay
// as they are. Control characters and DEL are escaped.
func appendJSONString(b, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c == '\t':
				b = append(b, `\t`...)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but line breaks to JavaScript.
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
