package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// validate checks c and normalises its sources.
func (c *Config) validate() error {
	if len(c.Sources) == 0 {
		return errors.New("no sources configured")
	}
	seen := make(map[string]bool)
	dropMonitor := ""
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Decoder == "drop_monitor" {
			if dropMonitor != "" {
				return fmt.Errorf("source %q: source %q reads the drop monitor already: the kernel has one", s.Name, dropMonitor)
			}
			dropMonitor = s.Name
		}
		if err := s.validate(); err != nil {
			// A name that is missing or too long would make a poor
			// prefix.
			if s.Name == "" || len(s.Name) > maxSourceNameBytes {
				return fmt.Errorf("source %d: %w", i+1, err)
			}
			return fmt.Errorf("source %q: %w", s.Name, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("source %q: name used by another source", s.Name)
		}
		seen[s.Name] = true
		s.normalise()
	}
	return nil
}

func (s *Source) validate() error {
	_, sendersErr := srcinfo.ParseSenders(s.Senders)
	switch {
	case s.Name == "":
		return errors.New("name is required")
	case len(s.Name) > maxSourceNameBytes:
		return fmt.Errorf("name is longer than %d bytes", maxSourceNameBytes)
	case !nameRE.MatchString(s.Name):
		return fmt.Errorf("name %q must match %s", s.Name, nameRE)
	case s.Family == "" && len(s.Groups) == 0, s.Family != "" && len(s.GroupNames) == 0:
		// A protocol's subscription joins Groups, a family's GroupNames.
		return errors.New("groups: at least one multicast group is required")
	case s.Decoder == "":
		return fmt.Errorf("decoder is required (one of %s)", strings.Join(decoder.Names, ", "))
	case !slices.Contains(decoder.Names, s.Decoder):
		return fmt.Errorf("unknown decoder %q (one of %s)", s.Decoder, strings.Join(decoder.Names, ", "))
	case s.ReceiveBufferBytes < 0 || s.ReceiveBufferBytes > maxReceiveBufferBytes:
		return fmt.Errorf("receive_buffer_bytes %d out of range 0-%d", s.ReceiveBufferBytes, maxReceiveBufferBytes)
	case s.MaxEvents < 1 || s.MaxEvents > maxMaxEvents:
		return fmt.Errorf("max_events %d out of range 1-%d", s.MaxEvents, maxMaxEvents)
	}
	if err := s.validateDecoder(); err != nil {
		return err
	}
	if sendersErr != nil {
		return sendersErr
	}
	if err := s.validateDropMonitor(); err != nil {
		return err
	}
	if s.Family != "" {
		return s.validateFamily()
	}
	maxGroup := s.Protocol.maxGroup()
	seen := make(map[uint32]bool)
	for _, g := range s.Groups {
		if g == 0 {
			return errors.New("groups: group 0 is not a multicast group (groups are numbered from 1)")
		}
		if seen[g] {
			return fmt.Errorf("groups: group %d listed twice", g)
		}
		seen[g] = true
		if g > maxGroup {
			return fmt.Errorf("groups: group %d out of range 1-%d for protocol %s", g, maxGroup, s.Protocol.describe())
		}
		if err := s.validateDecoderGroup(g); err != nil {
			return err
		}
	}
	return nil
}

// validateDropMonitor checks the drop_monitor decoder's keys.
func (s *Source) validateDropMonitor() error {
	switch {
	case s.Decoder != "drop_monitor" && (s.Mode != "" || s.QueueLength != 0 || s.InputInterface):
		return errors.New("mode, queue_length and input_interface apply to the drop_monitor decoder only")
	case s.Mode != "" && s.Mode != ModePackets && s.Mode != ModeSummary:
		return fmt.Errorf("mode %q must be %s or %s", s.Mode, ModePackets, ModeSummary)
	case s.QueueLength > maxQueueLength:
		return fmt.Errorf("queue_length %d out of range 1-%d", s.QueueLength, maxQueueLength)
	case s.Mode == ModeSummary && s.QueueLength != 0:
		return errors.New("queue_length applies to mode packets only")
	}
	return nil
}

// validateDecoder checks that the source's decoder reads its protocol or
// family and takes its event_names, as the decoder's registry entry says.
func (s *Source) validateDecoder() error {
	d, _ := decoder.Lookup(s.Decoder)
	switch {
	case len(s.EventNames) > 0 && !d.EventNames:
		var takers []string
		for _, d := range decoder.Infos() {
			if d.EventNames {
				takers = append(takers, d.Name)
			}
		}
		return fmt.Errorf("event_names applies to the %s decoders only", joinAnd(takers))
	case d.Protocol == decoder.NoProtocol && s.Family == "":
		return fmt.Errorf("the %s decoder reads generic netlink families: set family, not protocol", d.Name)
	case d.Protocol >= 0 && (s.Family != "" || s.Protocol != Protocol(d.Protocol)):
		return fmt.Errorf("the %s decoder reads protocol %s", d.Name, Protocol(d.Protocol).describe())
	}
	return nil
}

// validateDecoderGroup checks that group g is one the source's decoder
// reads, if it reads a protocol of its own.
func (s *Source) validateDecoderGroup(g uint32) error {
	d, _ := decoder.Lookup(s.Decoder)
	if d.Protocol < 0 || len(d.Groups) == 0 || slices.ContainsFunc(d.Groups, func(dg decoder.Group) bool { return dg.Number == g }) {
		return nil
	}
	if len(d.Groups) == 1 {
		return fmt.Errorf("groups: group %d is not the %s decoder's: it reads group %d (%s)", g, d.Name, d.Groups[0].Number, d.Groups[0].Name)
	}
	names := make([]string, len(d.Groups))
	for i, dg := range d.Groups {
		names[i] = fmt.Sprintf("%s (%d)", dg.Name, dg.Number)
	}
	return fmt.Errorf("groups: group %d is not one the %s decoder reads: %s", g, d.Name, strings.Join(names, ", "))
}

// joinAnd joins words as a list in a sentence: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// genlNameMax is the longest family or group name: GENL_NAMSIZ less the NUL.
const genlNameMax = 15

// validGenlName reports whether n can be a family's or a group's name.
func validGenlName(n string) bool {
	return n != "" && len(n) <= genlNameMax && !strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r > 0x7e })
}

// validateFamily checks what is particular to a family source; Source's
// UnmarshalYAML checked the family's name.
func (s *Source) validateFamily() error {
	seen := make(map[string]bool, len(s.GroupNames))
	for _, g := range s.GroupNames {
		if !validGenlName(g) {
			return fmt.Errorf("groups: group name %q must be 1-%d printable ASCII characters (GENL_NAMSIZ)", g, genlNameMax)
		}
		if seen[g] {
			return fmt.Errorf("groups: group %q listed twice", g)
		}
		seen[g] = true
	}
	for t := range s.EventNames {
		if t > 255 {
			return fmt.Errorf("event_names: type %d out of range 0-255 (generic netlink commands are 8 bits)", t)
		}
	}
	return nil
}

// normalise sorts s's groups and makes an empty EventNames nil, so that
// cosmetic differences do not restart a source on reload.
func (s *Source) normalise() {
	slices.Sort(s.Groups)
	slices.Sort(s.GroupNames)
	if len(s.EventNames) == 0 {
		s.EventNames = nil
	}
	if s.Decoder == "drop_monitor" {
		if s.Mode == "" {
			s.Mode = ModePackets
		}
		if s.Mode == ModePackets && s.QueueLength == 0 {
			s.QueueLength = DefaultQueueLength
		}
	}
}
