// Package config reads kevent_exporter's YAML configuration.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

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

// Source is one netlink subscription.
type Source struct {
	// Name is unique and becomes the source label.
	Name string `yaml:"name"`
	// Protocol is a classic netlink protocol number or name.
	Protocol Protocol `yaml:"protocol"`
	// Groups are multicast groups, 1-based as the kernel numbers them.
	Groups []uint32 `yaml:"groups"`
	// Decoder is raw, uevent or kevent.
	Decoder string `yaml:"decoder"`
	// ReceiveBufferBytes is the socket receive buffer to ask for; 0 keeps
	// the kernel's default.
	ReceiveBufferBytes int `yaml:"receive_buffer_bytes"`
	// MaxEvents bounds the distinct event names the source keeps.
	MaxEvents int `yaml:"max_events"`
	// PayloadInfo turns kevent_event_last_payload_info on or off.
	PayloadInfo bool `yaml:"payload_info"`
	// EventNames names raw message types.
	EventNames map[uint16]string `yaml:"event_names,omitempty"`
}

// DefaultSource holds the values of the keys a source leaves out.
var DefaultSource = Source{
	ReceiveBufferBytes: 8 << 20,
	MaxEvents:          collector.DefaultMaxEvents,
	PayloadInfo:        true,
}

const (
	maxReceiveBufferBytes = 1 << 30
	maxMaxEvents          = 1000000
	maxLinks              = 32
	// maxEventNameBytes is as long as the collector keeps event labels.
	maxEventNameBytes = 128
)

var (
	nameRE    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.-]*$`)
	eventRE   = regexp.MustCompile(`^[^\x00-\x1f]+$`)
	protocols = map[string]int{
		"route": 0, "usersock": 2, "firewall": 3, "sock_diag": 4, "inet_diag": 4,
		"nflog": 5, "xfrm": 6, "selinux": 7, "iscsi": 8, "audit": 9,
		"fib_lookup": 10, "connector": 11, "netfilter": 12, "ip6_fw": 13,
		"dnrtmsg": 14, "kobject_uevent": 15, "generic": 16, "scsitransport": 18,
		"ecryptfs": 19, "rdma": 20, "crypto": 21, "smc": 22,
	}
)

// sourceKeys are the keys a source may have.
var sourceKeys = yamlKeys(reflect.TypeOf(Source{}))

func yamlKeys(t reflect.Type) []string {
	keys := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		keys = append(keys, strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0])
	}
	return keys
}

// UnmarshalYAML fills in DefaultSource's values before the source's own.
func (s *Source) UnmarshalYAML(node *yaml.Node) error {
	// node.Decode does not inherit the decoder's KnownFields, so unknown
	// keys are caught here.
	var protocol, eventNames *yaml.Node
	if node.Kind == yaml.MappingNode {
		for i := 0; i < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			if !slices.Contains(sourceKeys, k.Value) {
				return fmt.Errorf("line %d: unknown key %q in source (known keys: %s)", k.Line, k.Value, strings.Join(sourceKeys, ", "))
			}
			switch k.Value {
			case "protocol":
				protocol = v
			case "event_names":
				eventNames = v
			}
		}
		// Protocol 0 is a protocol (route), so a missing one cannot be
		// told from the zero value later.
		if protocol == nil || protocol.Tag == "!!null" {
			return fmt.Errorf("line %d: source has no protocol", node.Line)
		}
	}
	*s = DefaultSource
	type plain Source
	if err := node.Decode((*plain)(s)); err != nil {
		return err
	}
	// yaml compares keys as text: 16 and 0x10 are the same type.
	if eventNames != nil && len(s.EventNames) != len(eventNames.Content)/2 {
		return fmt.Errorf("line %d: event_names lists a message type twice", eventNames.Line)
	}
	return nil
}

// Protocol is a classic netlink protocol number, written in YAML as a
// number or a name such as "usersock".
type Protocol int

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Protocol) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: protocol must be a number or a name", node.Line)
	}
	if n, err := strconv.Atoi(node.Value); err == nil {
		if n < 0 || n >= maxLinks {
			return fmt.Errorf("line %d: protocol %d out of range 0-31", node.Line, n)
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

// Load reads and checks the configuration file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
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

func (c *Config) validate() error {
	if len(c.Sources) == 0 {
		return errors.New("no sources configured")
	}
	seen := make(map[string]bool)
	for i, s := range c.Sources {
		if err := s.validate(); err != nil {
			if s.Name == "" {
				return fmt.Errorf("source %d: %w", i+1, err)
			}
			return fmt.Errorf("source %q: %w", s.Name, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("source %q: name used by another source", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

func (s *Source) validate() error {
	switch {
	case s.Name == "":
		return errors.New("name is required")
	case !nameRE.MatchString(s.Name):
		return fmt.Errorf("name %q must match %s", s.Name, nameRE)
	case len(s.Groups) == 0:
		return errors.New("groups: at least one multicast group is required")
	case s.Decoder == "":
		return fmt.Errorf("decoder is required (one of %s)", strings.Join(decoder.Names, ", "))
	case !slices.Contains(decoder.Names, s.Decoder):
		return fmt.Errorf("unknown decoder %q (one of %s)", s.Decoder, strings.Join(decoder.Names, ", "))
	case s.ReceiveBufferBytes < 0 || s.ReceiveBufferBytes > maxReceiveBufferBytes:
		return fmt.Errorf("receive_buffer_bytes %d out of range 0-%d", s.ReceiveBufferBytes, maxReceiveBufferBytes)
	case s.MaxEvents < 1 || s.MaxEvents > maxMaxEvents:
		return fmt.Errorf("max_events %d out of range 1-%d", s.MaxEvents, maxMaxEvents)
	case len(s.EventNames) > 0 && s.Decoder != "raw":
		return errors.New("event_names applies to the raw decoder only")
	}
	seen := make(map[uint32]bool)
	for _, g := range s.Groups {
		if g == 0 {
			return errors.New("groups: group 0 is not a multicast group (groups are numbered from 1)")
		}
		if seen[g] {
			return fmt.Errorf("groups: group %d listed twice", g)
		}
		seen[g] = true
	}
	for t, n := range s.EventNames {
		if !eventRE.MatchString(n) || len(n) > maxEventNameBytes {
			return fmt.Errorf("event_names: name %q for type %d must be 1-128 bytes without control characters", n, t)
		}
	}
	return nil
}
