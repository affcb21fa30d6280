// Package config reads kevent_exporter's YAML configuration.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// DefaultYAML is the configuration used without --config.file.
//
//go:embed default.yml
var DefaultYAML []byte

// Config is the whole configuration file.
type Config struct {
	Sources []Source `yaml:"sources"`
}

// Source is one netlink subscription. Parse normalises it: Groups are
// sorted and an empty EventNames is nil, so that configurations that differ
// only in such ways compare equal and a reload keeps the source running.
type Source struct {
	// Name is unique and becomes the source label.
	Name string `yaml:"name"`
	// Protocol is a classic netlink protocol number or name; unset when
	// Family is set.
	Protocol Protocol `yaml:"protocol"`
	// Family is a generic netlink family name, instead of a protocol.
	Family string `yaml:"family,omitempty"`
	// Groups are a protocol's multicast groups, 1-based as the kernel
	// numbers them.
	Groups []uint32 `yaml:"groups"`
	// GroupNames are a family's multicast groups, written in groups too.
	GroupNames []string `yaml:"-"`
	// Decoder is one of decoder.Names.
	Decoder string `yaml:"decoder"`
	// ReceiveBufferBytes is the socket receive buffer to ask for; 0 keeps
	// the kernel's default.
	ReceiveBufferBytes int `yaml:"receive_buffer_bytes"`
	// MaxEvents bounds the distinct event names the source keeps.
	MaxEvents int `yaml:"max_events"`
	// PayloadInfo turns kevent_event_last_payload_info on or off.
	PayloadInfo bool `yaml:"payload_info"`
	// EventNames names the raw decoder's message types or the genl
	// decoder's commands.
	EventNames EventNames `yaml:"event_names,omitempty"`
	// Senders says whose datagrams are decoded: "kernel", "root" or "any";
	// empty means the protocol's usual senders (see README).
	Senders string `yaml:"senders,omitempty"`
	// Required says the source must attach: while its protocol or family
	// is not registered, kevent_source_required makes the shipped alert
	// fire. Without it, a missing module is normal.
	Required bool `yaml:"required"`
	// ForgetAfter is how long the series of an object the kernel removed
	// stay after its removal.
	ForgetAfter Duration `yaml:"forget_after"`
	// Objects chooses the objects that get series of their own.
	Objects Objects `yaml:"objects,omitempty"`

	// Mode is the drop monitor's alert mode, ModePackets (the default)
	// or ModeSummary; drop_monitor decoder only.
	Mode string `yaml:"mode,omitempty"`
	// QueueLength is the packet mode's queue of dropped packets per CPU
	// (NET_DM_ATTR_QUEUE_LEN); drop_monitor decoder only.
	QueueLength uint32 `yaml:"queue_length,omitempty"`
	// InputInterface names each dropped packet's input interface in its
	// payload; drop_monitor decoder only.
	InputInterface bool `yaml:"input_interface,omitempty"`
}

// The drop monitor's modes.
const (
	// ModePackets reports each dropped packet, with its reason.
	ModePackets = "packets"
	// ModeSummary reports counts per code address, at most one summary
	// of 64 per CPU per second.
	ModeSummary = "summary"
	// DefaultQueueLength is the kernel's own default.
	DefaultQueueLength = 1000
	// maxQueueLength bounds the memory the kernel may hold in cloned
	// packets per CPU.
	maxQueueLength = 1000000
)

// EventNames maps raw netlink message types to event names.
type EventNames map[uint16]string

// DefaultSource holds the values of the keys a source leaves out.
var DefaultSource = Source{
	ReceiveBufferBytes: 8 << 20,
	MaxEvents:          collector.DefaultMaxEvents,
	PayloadInfo:        true,
	ForgetAfter:        Duration(DefaultForgetAfter),
}

const (
	// MaxFileBytes bounds the file Load reads. A configuration is a few
	// kilobytes, and naming all 65536 message types with short names takes
	// about 1.3 MiB; the bound keeps a wrong path, such as a log file or a
	// file that keeps growing, from eating the exporter's memory.
	MaxFileBytes = 4 << 20
	// ReadTimeout bounds the time Load waits for a file that looks
	// regular but waits for data, as /proc/kmsg does.
	ReadTimeout = 5 * time.Second
	// MaxGroup is the highest multicast group accepted for route, generic
	// and the custom protocols 17-31, whose kernel modules choose how many
	// groups they have: whether a group exists is only known when it is
	// joined. Every other protocol has exactly classicGroups groups.
	MaxGroup = 1024
)

const (
	maxReceiveBufferBytes = 1 << 30
	maxMaxEvents          = 1000000
	// classicGroups is how many groups the kernel gives a protocol that asks
	// for 32 or fewer.
	classicGroups = 32
	// maxSourceNameBytes keeps the source label, on every series, short.
	maxSourceNameBytes = 128
)

var (
	nameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.-]*$`)
	// protocolNames are the kernel's names of the classic protocols.
	protocolNames = [decoder.MaxProtocols]string{
		0: "route", 2: "usersock", 3: "firewall", 4: "sock_diag",
		5: "nflog", 6: "xfrm", 7: "selinux", 8: "iscsi", 9: "audit",
		10: "fib_lookup", 11: "connector", 12: "netfilter", 13: "ip6_fw",
		14: "dnrtmsg", 15: "kobject_uevent", 16: "generic", 18: "scsitransport",
		19: "ecryptfs", 20: "rdma", 21: "crypto", 22: "smc",
	}
	// protocols maps protocol names, the kernel's and its aliases, to numbers.
	protocols = func() map[string]int {
		m := map[string]int{"inet_diag": 4}
		for p, name := range protocolNames {
			if name != "" {
				m[name] = p
			}
		}
		return m
	}()
)

// configKeys and sourceKeys are the keys a configuration and a source may
// have.
var (
	configKeys = yamlKeys(reflect.TypeOf(Config{}))
	sourceKeys = yamlKeys(reflect.TypeOf(Source{}))
)

func yamlKeys(t reflect.Type) []string {
	keys := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if k := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// UnmarshalYAML reads the top-level mapping. It does the work of the
// decoder's KnownFields itself, in the decoder's words, because yaml.v3's
// struct decoding first compares every key with every other.
func (c *Config) UnmarshalYAML(node *yaml.Node) error {
	node = resolve(node)
	// Before any decoding: decoding is what aliases would multiply.
	if err := checkExpansion(node); err != nil {
		return err
	}
	if node.Kind != yaml.MappingNode {
		return notA("a mapping", "configuration", node)
	}
	pairs, err := mergedPairs(node, func(k *yaml.Node) (string, error) {
		if !slices.Contains(configKeys, k.Value) {
			return "", &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s not found in type config.Config", k.Line, k.Value)}}
		}
		return k.Value, nil
	}, duplicateKey)
	if err != nil {
		return err
	}
	for i := 0; i < len(pairs); i += 2 {
		k, v := pairs[i], pairs[i+1]
		// configKeys has sources only.
		switch rv := resolve(v); {
		case isNull(rv):
			c.Sources = nil
		case rv.Kind == yaml.SequenceNode:
			// yaml.v3 would drop an empty source without a word.
			for _, s := range rv.Content {
				if isNull(resolve(s)) {
					return notA("a mapping", k.Value, s)
				}
			}
			if err := rv.Decode(&c.Sources); err != nil {
				return err
			}
		default:
			return notA("a list", k.Value, v)
		}
	}
	return nil
}

// UnmarshalYAML fills in DefaultSource's values before the source's own.
func (s *Source) UnmarshalYAML(node *yaml.Node) error {
	node = resolve(node)
	// A plain error, unlike yaml.v3's type errors, stops decoding: a list
	// of a million numbers gives one error, not a million.
	if node.Kind != yaml.MappingNode {
		return notA("a mapping", "sources", node)
	}
	// node.Decode does not inherit the decoder's KnownFields, so unknown
	// keys are caught here. Catching duplicates and values of the wrong
	// kind here too leaves yaml.v3 a mapping of at most len(sourceKeys)
	// keys and scalars, so that its decoding stays cheap. Merge keys are
	// expanded here too: yaml.v3 would merge only after this check.
	pairs, err := mergedPairs(node, func(k *yaml.Node) (string, error) {
		if !slices.Contains(sourceKeys, k.Value) {
			return "", fmt.Errorf("line %d: unknown key %q in source (known keys: %s)", k.Line, k.Value, strings.Join(sourceKeys, ", "))
		}
		return k.Value, nil
	}, duplicateKey)
	if err != nil {
		return err
	}
	// The source as if its merged keys were its own, from here on.
	node = withPairs(node, pairs)
	values := make(map[string]*yaml.Node, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		values[pairs[i].Value] = pairs[i+1]
	}
	// Protocol 0 is a protocol (route), so a missing one cannot be told
	// from the zero value later.
	protocol, family := values["protocol"], values["family"]
	hasProtocol := protocol != nil && !isNull(resolve(protocol))
	hasFamily := family != nil && !isNull(resolve(family))
	switch {
	case hasProtocol && hasFamily:
		return fmt.Errorf("line %d: source has both protocol and family", node.Line)
	case !hasProtocol && !hasFamily:
		return fmt.Errorf("line %d: source has no protocol or family", node.Line)
	}
	// The groups of protocols route, xfrm, audit and netfilter may be
	// named, so the protocol is read first.
	var (
		p     Protocol
		names map[string]uint32
	)
	if hasProtocol {
		if err := p.UnmarshalYAML(protocol); err != nil {
			return err
		}
		names = groupNames[p]
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := resolve(node.Content[i]).Value
		if err := checkSourceValue(k, node.Content[i+1], hasFamily, p, names); err != nil {
			return err
		}
	}
	*s = DefaultSource
	if names != nil {
		node = withGroupNumbers(node, names)
	}
	if hasFamily {
		// A family's groups are names: read them here and leave yaml.v3
		// a mapping without them.
		if groups := values["groups"]; groups != nil && !isNull(resolve(groups)) {
			for _, g := range resolve(groups).Content {
				s.GroupNames = append(s.GroupNames, resolve(g).Value)
			}
		}
		node = withoutKey(node, "groups")
	}
	type plain Source
	return node.Decode((*plain)(s))
}

// withoutKey returns a copy of mapping node without key.
func withoutKey(node *yaml.Node, key string) *yaml.Node {
	c := *node
	c.Content = make([]*yaml.Node, 0, len(node.Content))
	for i := 0; i+1 < len(node.Content); i += 2 {
		if resolve(node.Content[i]).Value != key {
			c.Content = append(c.Content, node.Content[i], node.Content[i+1])
		}
	}
	return &c
}

// groupNames are the protocols whose groups may be named, with their
// names: those of the decoders that read a protocol of their own
// (rtnetlink, xfrm, audit, conntrack...), from the decoders' registry.
var groupNames = func() map[Protocol]map[string]uint32 {
	m := make(map[Protocol]map[string]uint32)
	for _, d := range decoder.Infos() {
		if d.Protocol < 0 {
			continue
		}
		for _, g := range d.Groups {
			if m[Protocol(d.Protocol)] == nil {
				m[Protocol(d.Protocol)] = make(map[string]uint32)
			}
			m[Protocol(d.Protocol)][g.Name] = g.Number
		}
	}
	return m
}()

// withGroupNumbers returns a copy of mapping node whose groups list has
// the group names replaced by their numbers in names, which
// checkSourceValue found known.
func withGroupNumbers(node *yaml.Node, names map[string]uint32) *yaml.Node {
	c := *node
	c.Content = slices.Clone(node.Content)
	for i := 0; i+1 < len(c.Content); i += 2 {
		if resolve(c.Content[i]).Value != "groups" || resolve(c.Content[i+1]).Kind != yaml.SequenceNode {
			continue
		}
		seq := *resolve(c.Content[i+1])
		seq.Anchor = ""
		seq.Content = slices.Clone(seq.Content)
		for j, g := range seq.Content {
			if rg := resolve(g); rg.Kind == yaml.ScalarNode && rg.ShortTag() == "!!str" {
				n := names[strings.ToLower(rg.Value)]
				seq.Content[j] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(n), Line: rg.Line, Column: rg.Column}
			}
		}
		c.Content[i+1] = &seq
	}
	return &c
}

// groupNameList lists group names for errors, by number.
func groupNameList(groups map[string]uint32) string {
	names := slices.SortedFunc(maps.Keys(groups), func(a, b string) int {
		return int(groups[a]) - int(groups[b])
	})
	return strings.Join(names, ", ")
}

// checkSourceValue checks the kind of a source's value v for key, where
// yaml.v3 would be too lax (floats truncated into integers) or too slow (a
// mapping where a scalar belongs). Protocol and EventNames check their own.
// names are the group names of the source's protocol p, if its groups may
// be named.
func checkSourceValue(key string, v *yaml.Node, family bool, p Protocol, names map[string]uint32) error {
	rv := resolve(v)
	switch key {
	case "receive_buffer_bytes", "max_events", "queue_length":
		return checkInt(key, v)
	case "groups":
		switch {
		case isNull(rv):
			// No groups: Source.validate says they are required.
		case rv.Kind == yaml.SequenceNode:
			for _, g := range rv.Content {
				if rg := resolve(g); names != nil && rg.Kind == yaml.ScalarNode && rg.ShortTag() == "!!str" {
					if _, ok := names[strings.ToLower(rg.Value)]; !ok {
						return fmt.Errorf("line %d: groups: unknown group %q for protocol %s (known: %s)", g.Line, rg.Value, protocolNames[p], groupNameList(names))
					}
					continue
				}
				if !family {
					if err := checkInt(key, g); err != nil {
						return err
					}
					continue
				}
				// A family's groups are named; a number is a mistake
				// (group ids are given at run time).
				if rg := resolve(g); rg.Kind != yaml.ScalarNode || rg.ShortTag() != "!!str" {
					return notA("a group name (a family's groups are named)", key, g)
				}
			}
		default:
			return notA("a list", key, v)
		}
	case "name", "decoder", "senders", "mode":
		if rv.Kind != yaml.ScalarNode {
			return notA("a string", key, v)
		}
	case "family":
		switch {
		case isNull(rv):
			// No family: the source has a protocol.
		case rv.Kind != yaml.ScalarNode || rv.ShortTag() != "!!str":
			// A number is more likely a protocol than a family named
			// "16".
			return notA("a string", key, v)
		case !validGenlName(rv.Value):
			// An empty family must not make a source without groups.
			return fmt.Errorf("line %d: family: %q is not 1-%d printable ASCII characters (GENL_NAMSIZ)", v.Line, rv.Value, genlNameMax)
		}
	case "payload_info", "required", "input_interface":
		if rv.Kind != yaml.ScalarNode || isNull(rv) {
			return notA("a boolean", key, v)
		}
	}
	return nil
}

// Protocol is a classic netlink protocol number, written in YAML as a
// number or a name such as "usersock".
type Protocol int

// UnmarshalYAML implements yaml.Unmarshaler. A number must be a YAML
// integer: a quoted "2" is a name, and no protocol is named that.
func (p *Protocol) UnmarshalYAML(node *yaml.Node) error {
	node = resolve(node)
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: protocol must be a number or a name", node.Line)
	}
	switch node.ShortTag() {
	case "!!int", "!!float":
		n, err := intValue("protocol", node)
		if err != nil {
			return err
		}
		if n < 0 || n >= decoder.MaxProtocols {
			return fmt.Errorf("line %d: protocol %s out of range 0-31", node.Line, node.Value)
		}
		*p = Protocol(n)
		return nil
	}
	n, ok := protocols[strings.ToLower(node.Value)]
	if !ok {
		return fmt.Errorf("line %d: unknown protocol %q", node.Line, node.Value)
	}
	*p = Protocol(n)
	return nil
}

// describe names p for errors: "usersock (2)", or "29" for a protocol
// without a name.
func (p Protocol) describe() string {
	if p >= 0 && p < decoder.MaxProtocols && protocolNames[p] != "" {
		return fmt.Sprintf("%s (%d)", protocolNames[p], int(p))
	}
	return fmt.Sprint(int(p))
}

// maxGroup is the highest multicast group Parse accepts for p: the kernel
// gives the classic protocols 32, and leaves the others' count to their
// modules.
func (p Protocol) maxGroup() uint32 {
	if p == 0 || p >= 16 {
		return MaxGroup
	}
	return classicGroups
}

// OptInYAML are the built-in sources the default configuration leaves
// out, because they need privileges or change the kernel's state;
// kevent_exporter monitor knows them by name.
//
//go:embed optin.yml
var OptInYAML []byte

// OptIn returns the built-in source called name that the default
// configuration leaves out.
func OptIn(name string) (Source, bool) {
	c, err := Parse(OptInYAML)
	if err != nil {
		panic("embedded opt-in sources: " + err.Error())
	}
	i := slices.IndexFunc(c.Sources, func(s Source) bool { return s.Name == name })
	if i < 0 {
		return Source{}, false
	}
	return c.Sources[i], true
}

// Default returns the embedded default configuration.
func Default() *Config {
	c, err := Parse(DefaultYAML)
	if err != nil {
		panic("embedded default configuration: " + err.Error())
	}
	return c
}

// Parse reads and checks a configuration. Unknown keys are errors.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("configuration is empty")
		}
		return nil, err
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, errors.New("configuration has more than one YAML document")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
