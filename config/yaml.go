package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
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

// intValue returns the value of an integer as yaml.v3 reads it: a scalar
// that resolves to !!int (decimal, 0x hex, 0o or 0 octal, 0b binary, with
// an optional sign and underscores), or one explicitly tagged !!int that
// parses as such. Integers beyond int64 come back as its bounds, so that
// range checks refuse them.
func intValue(n *yaml.Node) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, false
	}
	// yaml.v3 drops every underscore, then parses with base prefixes as Go
	// does.
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return v, true
}

// checkInt returns an error unless n (maybe an alias) is an integer; key
// names it in the error.
func checkInt(key string, n *yaml.Node) error {
	if _, ok := intValue(resolve(n)); !ok {
		return notA("an integer", key, n)
	}
	return nil
}

// notA is the error for a value n of key that is not what key takes.
func notA(what, key string, n *yaml.Node) error {
	return fmt.Errorf("line %d: %s: %s is not %s", n.Line, key, describe(resolve(n)), what)
}

// duplicateKey is yaml.v3's error for a key that a mapping lists twice,
// as yaml.v3 words it.
func duplicateKey(k *yaml.Node, first int) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: mapping key %q already defined at line %d", k.Line, k.Value, first)}}
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
// spelled (16 and 0x10), is an error. The mapping is walked here in linear
// time, where yaml.v3's map decoding would take quadratic time.
func (e *EventNames) UnmarshalYAML(node *yaml.Node) error {
	node = resolve(node)
	if isNull(node) {
		*e = nil
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return notA("a mapping", "event_names", node)
	}
	m := make(EventNames, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		t, ok := intValue(resolve(k))
		if !ok {
			return notA("an integer", "event_names", k)
		}
		if t < 0 || t > 0xffff {
			// yaml.v3's words, as before this type had its own decoding.
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal !!int `%s` into uint16", k.Line, resolve(k).Value)}}
		}
		if _, dup := m[uint16(t)]; dup {
			return fmt.Errorf("line %d: event_names lists a message type twice", k.Line)
		}
		rv := resolve(v)
		if rv.Kind != yaml.ScalarNode || rv.ShortTag() != "!!str" {
			return notA("a string", fmt.Sprintf("event_names: type %d", t), v)
		}
		m[uint16(t)] = rv.Value
	}
	*e = m
	return nil
}
