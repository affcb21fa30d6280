package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// The configuration walks YAML nodes itself wherever yaml.v3's reflection
// would cost more than linear time or accept too much: yaml.v3 checks a
// mapping's keys for duplicates with a quadratic loop (before it even looks
// at the target type), compares them as text (16 and 0x10 pass), and
// truncates floats decoded into integers (2.9 becomes 2).

// maxNodes bounds the YAML nodes a configuration may hold, counting each use
// of an alias as a copy of its anchor: aliases must not make a configuration
// bigger than the biggest file without them (a MaxFileBytes flow list of
// one-digit numbers). yaml.v3 guards against excessive aliasing too, but
// every source is decoded on its own and its count would start afresh.
const maxNodes = MaxFileBytes / 2

// resolve returns the node an alias stands for. One step is enough: an
// alias cannot carry an anchor, so an anchored node is never an alias.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// isNull reports whether n is an empty value (~, null or nothing).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return strconv.Quote(n.Value)
}

// leadingZero matches a decimal integer with a leading zero (underscores
// dropped), which YAML 1.1 and yaml.v3 read as octal (010 is 8) and YAML
// 1.2 as decimal (010 is 10); 09 is then a float.
var leadingZero = regexp.MustCompile(`^[-+]?0[0-9]+$`)

// intValue returns the integer n (maybe an alias) stands for, as yaml.v3
// reads it: a scalar that resolves to !!int (decimal, 0x hex, 0o octal, 0b
// binary, with an optional sign and underscores), or one explicitly tagged
// !!int that parses as such. Integers beyond int64 come back as its
// bounds, so that range checks refuse them. A number with a leading zero
// is an error rather than octal; key names the value in errors.
func intValue(key string, n *yaml.Node) (int64, error) {
	rn := resolve(n)
	if rn.Kind != yaml.ScalarNode {
		return 0, notA("an integer", key, n)
	}
	// yaml.v3 drops every underscore, then parses with base prefixes as Go
	// does.
	digits := strings.ReplaceAll(rn.Value, "_", "")
	if tag := rn.ShortTag(); (tag == "!!int" || tag == "!!float") && leadingZero.MatchString(digits) {
		return 0, leadingZeroError(key, n, digits)
	}
	if rn.ShortTag() != "!!int" {
		return 0, notA("an integer", key, n)
	}
	v, err := strconv.ParseInt(digits, 0, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, notA("an integer", key, n)
	}
	return v, nil
}

// leadingZeroError is intValue's error for digits with a leading zero,
// saying how to write the number either way it may have been meant.
func leadingZeroError(key string, n *yaml.Node, digits string) error {
	sign, body := "", digits
	if body[0] == '-' || body[0] == '+' {
		sign, body = body[:1], body[1:]
	}
	decimal := sign + strings.TrimLeft(body, "0")
	if decimal == sign {
		decimal = "0"
	}
	ways := decimal + " for decimal"
	if strings.Trim(body, "01234567") == "" {
		ways += " or " + sign + "0o" + body[1:] + " for octal"
	}
	return fmt.Errorf("line %d: %s: %q has a leading zero, octal in YAML 1.1 and decimal in YAML 1.2: write %s", n.Line, key, resolve(n).Value, ways)
}

// checkInt returns an error unless n (maybe an alias) is an integer; key
// names it in the error.
func checkInt(key string, n *yaml.Node) error {
	_, err := intValue(key, n)
	return err
}

// isMergeKey reports whether k is YAML's merge key: a plain <<.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// mergedPairs returns the key-value pairs of mapping node, laid out as in
// Node.Content, with each merge key (<<: *base, or a list of them)
// replaced by the pairs of the mappings it merges, as YAML's merge key
// type says: a mapping's own keys override merged ones, and an earlier
// merged mapping overrides a later one. id names a key for those
// comparisons, or returns an error for a key that does not belong (an
// unknown key, merged or not, is still an error); dup is the error for a
// key that one mapping lists twice.
//
// The walk visits each merged mapping once per merge, as checkExpansion
// counts it, so its cost is bounded by the configuration's expanded size.
func mergedPairs(node *yaml.Node, id func(k *yaml.Node) (string, error), dup func(k, first *yaml.Node) error) ([]*yaml.Node, error) {
	pairs := make([]*yaml.Node, 0, len(node.Content))
	taken := make(map[string]bool, len(node.Content)/2)
	var walk func(m *yaml.Node) error
	walk = func(m *yaml.Node) error {
		own := make(map[string]*yaml.Node, len(m.Content)/2)
		var merges []*yaml.Node
		var mergeKey *yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := resolve(m.Content[i]), m.Content[i+1]
			if isMergeKey(k) {
				if mergeKey != nil {
					return duplicateKey(k, mergeKey)
				}
				mergeKey = k
				var err error
				if merges, err = mergeSources(v); err != nil {
					return err
				}
				continue
			}
			key, err := id(k)
			if err != nil {
				return err
			}
			if first, ok := own[key]; ok {
				return dup(k, first)
			}
			own[key] = k
			if !taken[key] {
				taken[key] = true
				pairs = append(pairs, k, v)
			}
		}
		for _, mm := range merges {
			if err := walk(mm); err != nil {
				return err
			}
		}
		return nil
	}
	return pairs, walk(node)
}

// mergeSources returns the mappings that a merge key's value v merges: a
// mapping, or a list of them, in order of precedence.
func mergeSources(v *yaml.Node) ([]*yaml.Node, error) {
	const what = "a mapping or a list of mappings"
	switch rv := resolve(v); rv.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{rv}, nil
	case yaml.SequenceNode:
		ms := make([]*yaml.Node, 0, len(rv.Content))
		for _, m := range rv.Content {
			if resolve(m).Kind != yaml.MappingNode {
				return nil, notA(what, "<<", m)
			}
			ms = append(ms, resolve(m))
		}
		return ms, nil
	}
	return nil, notA(what, "<<", v)
}

// withPairs returns a copy of mapping node with pairs as its content.
func withPairs(node *yaml.Node, pairs []*yaml.Node) *yaml.Node {
	c := *node
	c.Content = pairs
	return &c
}

// notA is the error for a value n of key that is not what key takes.
func notA(what, key string, n *yaml.Node) error {
	return fmt.Errorf("line %d: %s: %s is not %s", n.Line, key, describe(resolve(n)), what)
}

// duplicateKey is the error for a key k that a mapping lists twice, first
// at first, as yaml.v3 words it.
func duplicateKey(k, first *yaml.Node) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: mapping key %q already defined at line %d", k.Line, k.Value, first.Line)}}
}

// checkExpansion returns an error if root has more than maxNodes nodes once
// its aliases are expanded. Each anchored node is counted once and its
// count reused for every alias to it, so the check is linear in the nodes
// the parser made.
func checkExpansion(root *yaml.Node) error {
	counted := make(map[*yaml.Node]int) // anchored node: its count, or -1 while counting it
	var count func(n *yaml.Node) (int, error)
	count = func(n *yaml.Node) (int, error) {
		n = resolve(n)
		if n.Anchor != "" {
			switch c, ok := counted[n]; {
			case ok && c < 0:
				return 0, fmt.Errorf("line %d: anchor %q contains an alias to itself", n.Line, n.Anchor)
			case ok:
				return c, nil
			}
			counted[n] = -1
		}
		total := 1
		for _, child := range n.Content {
			c, err := count(child)
			if err != nil {
				return 0, err
			}
			// Stop early: a few aliases can stand for billions of nodes.
			if total += c; total > maxNodes {
				return 0, fmt.Errorf("configuration has more than %d YAML nodes with its aliases expanded", maxNodes)
			}
		}
		if n.Anchor != "" {
			counted[n] = total
		}
		return total, nil
	}
	_, err := count(root)
	return err
}

// UnmarshalYAML reads a mapping of message types to names. Keys are YAML
// integers 0-65535 and values strings; a type listed twice, however
// spelled (16 and 0x10), is an error, and so is a name that cannot be an
// event label. The mapping is walked here in linear time, where yaml.v3's
// map decoding would take quadratic time.
func (e *EventNames) UnmarshalYAML(node *yaml.Node) error {
	node = resolve(node)
	if isNull(node) {
		*e = nil
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return notA("a mapping", "event_names", node)
	}
	pairs, err := mergedPairs(node, func(k *yaml.Node) (string, error) {
		t, err := eventType(k)
		return strconv.Itoa(int(t)), err
	}, func(k, _ *yaml.Node) error {
		return fmt.Errorf("line %d: event_names lists a message type twice", k.Line)
	})
	if err != nil {
		return err
	}
	m := make(EventNames, len(pairs)/2)
	named := make(map[string]uint16, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		t, _ := eventType(pairs[i])
		v := pairs[i+1]
		rv := resolve(v)
		if rv.Kind != yaml.ScalarNode || rv.ShortTag() != "!!str" {
			return notA("a string", fmt.Sprintf("event_names: type %d", t), v)
		}
		if err := checkEventName(t, rv.Value, named); err != nil {
			return fmt.Errorf("line %d: event_names: %w", v.Line, err)
		}
		named[rv.Value] = t
		m[t] = rv.Value
	}
	*e = m
	return nil
}

// eventType returns the message type that event_names key k stands for.
func eventType(k *yaml.Node) (uint16, error) {
	t, err := intValue("event_names", k)
	if err != nil {
		return 0, err
	}
	if t < 0 || t > 0xffff {
		// yaml.v3's words, as before this type had its own decoding.
		return 0, &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal !!int `%s` into uint16", k.Line, resolve(k).Value)}}
	}
	return uint16(t), nil
}

// checkEventName returns why n cannot name type t, given the types named
// so far.
func checkEventName(t uint16, n string, named map[string]uint16) error {
	switch k, isKernel := decoder.KernelType(n); {
	case n == "" || len(n) > collector.MaxNameBytes || strings.ContainsFunc(n, unicode.IsControl):
		// Control characters, DEL and C1 included, would garble the
		// logs and the monitor's lines.
		return fmt.Errorf("type %d: name %q must be 1-%d bytes without control characters", t, n, collector.MaxNameBytes)
	case strings.HasPrefix(n, collector.ReservedPrefix):
		// The collector's own events (__overflow__) start with it.
		return fmt.Errorf("type %d: name %q starts with %q, which is reserved", t, n, collector.ReservedPrefix)
	case strings.Trim(n, "0123456789") == "":
		// Unnamed types are named by their number: "5" would merge with
		// type 5's events.
		return fmt.Errorf("type %d: name %q is all digits, as the names of unnamed types are", t, n)
	case isKernel && k != t:
		return fmt.Errorf("type %d: name %q is the kernel's name for type %d", t, n, k)
	}
	if u, ok := named[n]; ok {
		return fmt.Errorf("types %d and %d are both named %q", u, t, n)
	}
	return nil
}
