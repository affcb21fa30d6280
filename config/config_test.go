package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/decoder"
)

func TestDefault(t *testing.T) {
	c := Default()
	fa := Duration(5 * time.Minute)
	want := []Source{
		{Name: "uevent", Protocol: 15, Groups: []uint32{1}, Decoder: "uevent", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true, ForgetAfter: fa},
		{Name: "link", Protocol: 0, Groups: []uint32{1, 3, 5, 9}, Decoder: "rtnetlink", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true, ForgetAfter: fa},
		{Name: "thermal", Family: "thermal", GroupNames: []string{"event"}, Decoder: "thermal", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true, ForgetAfter: fa},
		{Name: "acpi", Family: "acpi_event", GroupNames: []string{"acpi_mc_group"}, Decoder: "acpi", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true, ForgetAfter: fa},
		{Name: "quota", Family: "VFS_DQUOT", GroupNames: []string{"events"}, Decoder: "quota", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true, ForgetAfter: fa},
		{Name: "kevent", Family: "kevent", GroupNames: []string{"events"}, Decoder: "kevent", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true, ForgetAfter: fa},
		{Name: "seed", Protocol: 29, Groups: []uint32{2}, Decoder: "raw", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true, ForgetAfter: fa},
	}
	// The uevent and link sources share their object filter, which
	// TestDefaultObjects checks.
	for i := range 2 {
		if c.Sources[i].Objects.Exclude == "" || c.Sources[i].Objects != c.Sources[0].Objects {
			t.Fatalf("source %s: objects %+v, want the containers' interfaces excluded as for uevent", c.Sources[i].Name, c.Sources[i].Objects)
		}
		want[i].Objects = c.Sources[0].Objects
	}
	if !reflect.DeepEqual(c.Sources, want) {
		t.Fatalf("default sources:\n got %+v\nwant %+v", c.Sources, want)
	}
}

// TestDefaultObjects: the default config names the node's interfaces and
// counts the containers' together.
func TestDefaultObjects(t *testing.T) {
	_, exclude := Default().Sources[1].Objects.Regexps()
	for _, name := range []string{
		"veth1234abcd", "vethwepl12345", "cali0123456789a", "lxc12ab34cd56ef", "lxc_health",
		"cilium_host", "flannel.1", "cni0", "cni-podman0", "podman0", "docker0", "br-0123456789ab",
		"tunl0", "vxlan.calico", "wireguard.cali", "kube-ipvs0", "genev_sys_6081",
		"eni0123456789a", "azv0123456789a", "gke0123456789a", "0123456789abcde", "0123456789ab_h",
	} {
		if !exclude.MatchString(name) {
			t.Errorf("%s is not excluded", name)
		}
	}
	for _, name := range []string{
		"lo", "eth0", "eth9", "ens5", "eno1", "enp3s0f0", "wlan0", "bond0", "bond0.100", "br0",
		"br-ex", "br-int", "vlan10", "ib0", "nodelocaldns", "ovn-k8s-mp0", "vxlan100", "enic0", "eni0",
	} {
		if exclude.MatchString(name) {
			t.Errorf("%s is excluded", name)
		}
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
    forget_after: 0s
  - name: users
    protocol: UserSock
    groups: [1]
    decoder: kevent
    senders: any
    required: true
    forget_after: 1h30m
    objects:
      include: 'eth.*|en.*'
      exclude: eth9
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{
		{Name: "seed", Protocol: 29, Groups: []uint32{2, 40}, Decoder: "raw", MaxEvents: 10, EventNames: map[uint16]string{3: "hello", 16: "my_event"}},
		{Name: "users", Protocol: 2, Groups: []uint32{1}, Decoder: "kevent", ReceiveBufferBytes: 8 << 20, MaxEvents: 2000, PayloadInfo: true, Senders: "any", Required: true,
			ForgetAfter: Duration(90 * time.Minute), Objects: Objects{Include: "eth.*|en.*", Exclude: "eth9"}},
	}
	if !reflect.DeepEqual(c.Sources, want) {
		t.Fatalf("sources:\n got %+v\nwant %+v", c.Sources, want)
	}
}

// TestParseKernelSources: protocol route's groups by name or number (named
// ones are kept as their numbers, so that renaming them does not restart
// the source), and the proc connector's group.
func TestParseKernelSources(t *testing.T) {
	c, err := Parse([]byte(`
sources:
  - name: links
    protocol: route
    groups: [ipv6_ifaddr, LINK, 5, neigh]
    decoder: rtnetlink
  - name: named
    protocol: 0
    groups: &g [link]
    decoder: raw
  - name: aliased
    protocol: route
    groups: *g
    decoder: raw
  - name: procs
    protocol: connector
    groups: [1]
    decoder: proc
  - name: ipsec
    protocol: xfrm
    groups: [expire, SA, policy]
    decoder: xfrm
  - name: audit
    protocol: audit
    groups: [readlog]
    decoder: audit
  - name: conntrack
    protocol: netfilter
    groups: [conntrack_destroy, Conntrack_New, conntrack_exp_new]
    decoder: conntrack
`))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultSource
	want := []Source{def, def, def, def, def, def, def}
	want[0].Name, want[0].Groups, want[0].Decoder = "links", []uint32{1, 3, 5, 9}, "rtnetlink"
	want[1].Name, want[1].Groups, want[1].Decoder = "named", []uint32{1}, "raw"
	want[2].Name, want[2].Groups, want[2].Decoder = "aliased", []uint32{1}, "raw"
	want[3].Name, want[3].Protocol, want[3].Groups, want[3].Decoder = "procs", 11, []uint32{1}, "proc"
	want[4].Name, want[4].Protocol, want[4].Groups, want[4].Decoder = "ipsec", 6, []uint32{2, 3, 4}, "xfrm"
	want[5].Name, want[5].Protocol, want[5].Groups, want[5].Decoder = "audit", 9, []uint32{1}, "audit"
	want[6].Name, want[6].Protocol, want[6].Groups, want[6].Decoder = "conntrack", 12, []uint32{1, 3, 4}, "conntrack"
	if !reflect.DeepEqual(c.Sources, want) {
		t.Fatalf("sources:\n got %+v\nwant %+v", c.Sources, want)
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

// TestParseIntegers checks that integers are read as YAML reads them,
// whatever their base, and that names and bounds at their limits pass.
func TestParseIntegers(t *testing.T) {
	c, err := Parse([]byte(`
sources:
  - name: ` + strings.Repeat("n", 128) + `
    protocol: 0x1d
    groups: [0o20, 0b11, 1_024]
    decoder: raw
    max_events: +1_000
    event_names:
      0x10: a
      0o17: b
      0b11: c
      1_000: d
      +5: e
      65535: f
      2: error
  - name: users
    protocol: usersock
    groups: [32]
    decoder: raw
  - name: generic
    protocol: generic
    groups: [1024]
    decoder: raw
`))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sources[0]
	if s.Protocol != 29 || !reflect.DeepEqual(s.Groups, []uint32{3, 16, 1024}) || s.MaxEvents != 1000 {
		t.Errorf("protocol %d, groups %v, max_events %d; want 29, [3 16 1024], 1000", s.Protocol, s.Groups, s.MaxEvents)
	}
	want := EventNames{16: "a", 15: "b", 3: "c", 1000: "d", 5: "e", 65535: "f", 2: "error"}
	if !reflect.DeepEqual(s.EventNames, want) {
		t.Errorf("event_names = %v, want %v", s.EventNames, want)
	}
}

func TestParseAliases(t *testing.T) {
	c, err := Parse([]byte(`
sources:
  - &name name: a
    protocol: &p 29
    groups: &g [3, 1]
    decoder: raw
    max_events: &m 10
    event_names: &en
      16: x
      0x11: y
  - *name : b
    protocol: *p
    groups: *g
    decoder: raw
    max_events: *m
    event_names: *en
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Sources[0], c.Sources[1]
	want := Source{Name: "a", Protocol: 29, Groups: []uint32{1, 3}, Decoder: "raw", ReceiveBufferBytes: 8 << 20, MaxEvents: 10, PayloadInfo: true, EventNames: EventNames{16: "x", 17: "y"}, ForgetAfter: Duration(DefaultForgetAfter)}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("source a:\n got %+v\nwant %+v", a, want)
	}
	want.Name = "b"
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("source b:\n got %+v\nwant %+v", b, want)
	}
	// Each source has its own copy: normalising one leaves the other.
	a.EventNames[1] = "changed"
	if _, ok := b.EventNames[1]; ok {
		t.Fatal("sources share an event_names map")
	}
}

// TestParseMerge checks YAML merge keys: a source's own keys override
// merged ones, an earlier merged mapping overrides a later one, merges nest,
// and event_names and a merged protocol's named groups merge too.
func TestParseMerge(t *testing.T) {
	c, err := Parse([]byte(`
sources:
  - &base
    name: a
    protocol: 29
    groups: [1]
    decoder: raw
    max_events: 10
    event_names: &names {16: x, 17: y}
  - <<: *base
    name: b
    groups: [2]
  - &c
    <<: [{max_events: 20}, *base]
    name: c
    event_names:
      <<: *names
      17: z
      18: w
  - <<: *c
    name: d
  - <<: {family: kevent, decoder: kevent}
    name: e
    groups: [events]
  - name: f
    <<: {protocol: route, decoder: rtnetlink}
    groups: [link]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := DefaultSource
	a.Name, a.Protocol, a.Groups, a.Decoder, a.MaxEvents, a.EventNames = "a", 29, []uint32{1}, "raw", 10, EventNames{16: "x", 17: "y"}
	b := a
	b.Name, b.Groups = "b", []uint32{2}
	cc := a
	cc.Name, cc.MaxEvents, cc.EventNames = "c", 20, EventNames{16: "x", 17: "z", 18: "w"}
	d := cc
	d.Name = "d"
	e := DefaultSource
	e.Name, e.Family, e.GroupNames, e.Decoder = "e", "kevent", []string{"events"}, "kevent"
	f := DefaultSource
	f.Name, f.Protocol, f.Groups, f.Decoder = "f", Protocol(0), []uint32{1}, "rtnetlink"
	if want := []Source{a, b, cc, d, e, f}; !reflect.DeepEqual(c.Sources, want) {
		t.Fatalf("sources:\n got %+v\nwant %+v", c.Sources, want)
	}
}

// TestParseNormalised checks that configurations that differ only in group
// order and an empty event_names give equal sources, so a reload does not
// restart them.
func TestParseNormalised(t *testing.T) {
	parse := func(y string) []Source {
		t.Helper()
		c, err := Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return c.Sources
	}
	a := parse("sources:\n  - name: s\n    protocol: 29\n    groups: [40, 2]\n    decoder: raw\n    event_names: {}\n")
	b := parse("sources:\n  - name: s\n    protocol: 29\n    groups: [2, 40]\n    decoder: raw\n")
	c := parse("sources:\n  - name: s\n    protocol: 29\n    groups: [40, 2]\n    decoder: raw\n    event_names:\n")
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a, c) {
		t.Fatalf("sources differ:\n%+v\n%+v\n%+v", a, b, c)
	}
	if a[0].EventNames != nil {
		t.Fatalf("event_names {} = %#v, want nil", a[0].EventNames)
	}
}

// eventNamesYAML is a raw source naming message types 0 to n-1.
func eventNamesYAML(n int) []byte {
	var b strings.Builder
	b.WriteString("sources:\n  - name: s\n    protocol: 29\n    groups: [1]\n    decoder: raw\n    event_names:\n")
	for t := 0; t < n; t++ {
		fmt.Fprintf(&b, "      %d: e%d\n", t, t)
	}
	return []byte(b.String())
}

func TestParseAllEventNames(t *testing.T) {
	c, err := Parse(eventNamesYAML(65536))
	if err != nil {
		t.Fatal(err)
	}
	names := c.Sources[0].EventNames
	if len(names) != 65536 || names[0] != "e0" || names[65535] != "e65535" {
		t.Fatalf("got %d names, 0 = %q, 65535 = %q", len(names), names[0], names[65535])
	}
}

// TestCollectorBounds: what the configuration takes is what the collector
// keeps. A source without max_events gets the collector's bound, the
// longest event name taken is as long as the event label keeps whole, and
// no name taken looks like the collector's own events.
func TestCollectorBounds(t *testing.T) {
	src := "sources:\n  - name: s\n    protocol: 29\n    groups: [1]\n    decoder: raw\n"
	longest := strings.Repeat("n", collector.MaxNameBytes)
	c, err := Parse([]byte(src + "    event_names: {16: " + longest + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Sources[0].MaxEvents; got != collector.DefaultMaxEvents {
		t.Errorf("max_events left out: %d, want the collector's default %d", got, collector.DefaultMaxEvents)
	}
	if _, err := Parse([]byte(src + "    event_names: {16: " + longest + "n}\n")); err == nil {
		t.Errorf("an event name of %d bytes, one more than the event label keeps, was taken", collector.MaxNameBytes+1)
	}
	if _, err := Parse([]byte(src + "    event_names: {16: " + collector.ReservedPrefix + "x}\n")); err == nil {
		t.Errorf("an event name starting with the collector's reserved %q was taken", collector.ReservedPrefix)
	}
}

// BenchmarkParseEventNames shows the cost of event_names is linear: yaml.v3's
// own map decoding took 3.5 s for 32768 entries and 15 s for 65536.
func BenchmarkParseEventNames(b *testing.B) {
	for _, n := range []int{32768, 65536} {
		y := eventNamesYAML(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Parse(y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParseBigMapping checks that a mapping where a string belongs is
// refused without yaml.v3 comparing each of its keys with every other.
func TestParseBigMapping(t *testing.T) {
	var b strings.Builder
	b.WriteString("sources:\n  - protocol: 2\n    name:\n")
	for i := 0; i < 50000; i++ {
		fmt.Fprintf(&b, "      k%d: 1\n", i)
	}
	_, err := Parse([]byte(b.String()))
	if want := "line 4: name: a mapping is not a string"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

// loadWithin runs Load in a goroutine and fails the test if it has not
// returned in 10 s: a guard against Load hanging, not a speed test.
func loadWithin(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Load(path)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Load(%q) has not returned after 10 s", path)
		return nil
	}
}

func TestLoadNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{fifo, t.TempDir()}
	if _, err := os.Stat("/dev/zero"); err == nil {
		paths = append(paths, "/dev/zero")
	}
	for _, p := range paths {
		want := fmt.Sprintf("config file %q is not a regular file", p)
		if err := loadWithin(t, p); err == nil || err.Error() != want {
			t.Errorf("Load(%q): got %v, want %s", p, err, want)
		}
	}
}

// TestOpenRegularFIFO checks the check made after opening, for a path that
// became a FIFO after Load looked at it: the open must not wait for a
// writer.
func TestOpenRegularFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, _, err := openRegular(fifo)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if want := fmt.Sprintf("config file %q is not a regular file", fifo); err == nil || err.Error() != want {
			t.Fatalf("openRegular(fifo): got %v, want %s", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("openRegular(fifo) has not returned after 10 s")
	}
}

func TestLoadSize(t *testing.T) {
	// A good configuration padded with comments to exactly MaxFileBytes.
	pad := MaxFileBytes - len(DefaultYAML)
	var b strings.Builder
	b.Write(DefaultYAML)
	for pad > 0 {
		line := min(pad, 100)
		b.WriteString("#" + strings.Repeat("x", line-2) + "\n")
		pad -= line
	}
	y := b.String()
	if len(y) != MaxFileBytes {
		t.Fatalf("padded to %d bytes, want %d", len(y), MaxFileBytes)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "max.yml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(p); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Load of a %d-byte file: %v", MaxFileBytes, err)
	}
	p = filepath.Join(dir, "big.yml")
	if err := os.WriteFile(p, []byte(y+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("config file %q is larger than 4194304 bytes", p)
	if _, err := Load(p); err == nil || err.Error() != want {
		t.Fatalf("Load of a %d-byte file: got %v, want %s", MaxFileBytes+1, err, want)
	}
}

// TestLoadSymlink checks a symlink to a configuration, as Kubernetes mounts
// a ConfigMap, loads.
func TestLoadSymlink(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(p, DefaultYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yml")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	c, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Load(symlink) = %+v, want the default", c)
	}
}

// TestLoadInvalid loads each bad configuration in testdata, as the exporter
// and --config.check do, and wants its exact error: a new check of the
// configuration comes with a file here and its line in the table.
func TestLoadInvalid(t *testing.T) {
	const leadingZero = "has a leading zero, octal in YAML 1.1 and decimal in YAML 1.2: write "
	// The decoders the errors list, as many as the package has.
	decoders := strings.Join(decoder.Names, ", ")
	if !strings.HasPrefix(decoders, "raw, uevent, kevent, genl, ") {
		t.Fatalf("decoder.Names = %q, want raw, uevent, kevent, genl first", decoders)
	}
	tests := []struct {
		file, err string
	}{
		{"invalid-empty.yml", `configuration is empty`},
		{"invalid-no-sources.yml", `no sources configured`},
		{"invalid-unknown-top-level-key.yml", "yaml: unmarshal errors:\n  line 1: field sourcez not found in type config.Config"},
		{"invalid-unknown-source-key.yml", `line 6: unknown key "grops" in source (known keys: name, protocol, family, groups, decoder, receive_buffer_bytes, max_events, payload_info, event_names, senders, required, forget_after, objects, mode, queue_length, input_interface)`},
		{"invalid-not-yaml.yml", `yaml: line 1: did not find expected node content`},
		{"invalid-missing-name.yml", `source 1: name is required`},
		{"invalid-bad-name.yml", `source "a b": name "a b" must match ^[a-zA-Z_][a-zA-Z0-9_.-]*$`},
		{"invalid-duplicate-name.yml", `source "s": name used by another source`},
		{"invalid-protocol-too-big.yml", `line 3: protocol 32 out of range 0-31`},
		{"invalid-protocol-negative.yml", `line 3: protocol -1 out of range 0-31`},
		{"invalid-unknown-protocol-name.yml", `line 3: unknown protocol "nosuch"`},
		{"invalid-protocol-list.yml", `line 3: protocol must be a number or a name`},
		{"invalid-no-groups.yml", `source "s": groups: at least one multicast group is required`},
		{"invalid-group-zero.yml", `source "s": groups: group 0 is not a multicast group (groups are numbered from 1)`},
		{"invalid-group-negative.yml", "yaml: unmarshal errors:\n  line 4: cannot unmarshal !!int `-1` into uint32"},
		{"invalid-group-twice.yml", `source "s": groups: group 3 listed twice`},
		{"invalid-no-decoder.yml", `source "s": decoder is required (one of ` + decoders + `)`},
		{"invalid-unknown-decoder.yml", `source "s": unknown decoder "json" (one of ` + decoders + `)`},
		{"invalid-negative-buffer.yml", `source "s": receive_buffer_bytes -1 out of range 0-1073741824`},
		{"invalid-huge-buffer.yml", `source "s": receive_buffer_bytes 2147483648 out of range 0-1073741824`},
		{"invalid-zero-max-events.yml", `source "s": max_events 0 out of range 1-1000000`},
		{"invalid-huge-max-events.yml", `source "s": max_events 1000001 out of range 1-1000000`},
		{"invalid-protocol-and-family.yml", `line 2: source has both protocol and family`},
		{"invalid-numeric-group-on-a-family.yml", `line 5: groups: "2" is not a group name (a family's groups are named)`},
		{"invalid-named-group-on-a-protocol-alone.yml", `line 4: groups: "events" is not an integer`},
		{"invalid-family-without-groups.yml", `source "f": groups: at least one multicast group is required`},
		{"invalid-long-family-name.yml", `line 3: family: "abcdefghijklmnop" is not 1-15 printable ASCII characters (GENL_NAMSIZ)`},
		{"invalid-family-list.yml", `line 3: family: a list is not a string`},
		{"invalid-group-name-twice.yml", `source "f": groups: group "events" listed twice`},
		{"invalid-bad-group-name.yml", `source "f": groups: group name "café" must be 1-15 printable ASCII characters (GENL_NAMSIZ)`},
		{"invalid-thermal-on-a-protocol.yml", `source "s": the thermal decoder reads generic netlink families: set family, not protocol`},
		{"invalid-genl-on-a-protocol.yml", `source "s": the genl decoder reads generic netlink families: set family, not protocol`},
		{"invalid-genl-command-too-big.yml", `source "f": event_names: type 256 out of range 0-255 (generic netlink commands are 8 bits)`},
		{"invalid-unknown-senders.yml", `source "s": senders "everyone" must be one of kernel, root, any`},
		{"invalid-senders-list.yml", `line 6: senders: a list is not a string`},
		{"invalid-event-names-on-uevent.yml", `source "s": event_names applies to the raw and genl decoders only`},
		{"invalid-event-names-bad-type.yml", "yaml: unmarshal errors:\n  line 6: cannot unmarshal !!int `70000` into uint16"},
		{"invalid-event-names-empty-name.yml", `line 6: event_names: type 3: name "" must be 1-128 bytes without control characters`},
		{"invalid-event-names-long-name.yml", `line 6: event_names: type 3: name "` + strings.Repeat("é", 65) + `" must be 1-128 bytes without control characters`},
		{"invalid-event-names-type-twice.yml", `line 6: event_names lists a message type twice`},
		{"invalid-no-protocol.yml", `line 2: source has no protocol or family`},
		{"invalid-null-protocol.yml", `line 2: source has no protocol or family`},
		{"invalid-two-documents.yml", `configuration has more than one YAML document`},
		{"invalid-top-level-list.yml", `line 1: configuration: a list is not a mapping`},
		{"invalid-sources-not-a-list.yml", `line 1: sources: "5" is not a list`},
		{"invalid-source-not-a-mapping.yml", `line 1: sources: "1" is not a mapping`},
		{"invalid-source-a-list.yml", `line 2: sources: a list is not a mapping`},
		{"invalid-source-empty.yml", `line 6: sources: "~" is not a mapping`},
		{"invalid-top-level-key-twice.yml", "yaml: unmarshal errors:\n  line 2: mapping key \"sources\" already defined at line 1"},
		{"invalid-source-key-twice.yml", "yaml: unmarshal errors:\n  line 6: mapping key \"name\" already defined at line 2"},
		{"invalid-group-fraction.yml", `line 4: groups: "21.9" is not an integer`},
		{"invalid-drop-monitor-mode-elsewhere.yml", `source "s": mode, queue_length and input_interface apply to the drop_monitor decoder only`},
		{"invalid-drop-monitor-unknown-mode.yml", `source "d": mode "everything" must be packets or summary`},
		{"invalid-drop-monitor-queue-length-of-summary.yml", `source "d": queue_length applies to mode packets only`},
		{"invalid-drop-monitor-queue-length-too-long.yml", `source "d": queue_length 1000001 out of range 1-1000000`},
		{"invalid-drop-monitor-queue-length-fraction.yml", `line 6: queue_length: "1.5" is not an integer`},
		{"invalid-drop-monitor-input-interface-list.yml", `line 6: input_interface: a list is not a boolean`},
		{"invalid-drop-monitor-on-a-protocol.yml", `source "d": the drop_monitor decoder reads generic netlink families: set family, not protocol`},
		{"invalid-two-drop-monitors.yml", `source "e": source "d" reads the drop monitor already: the kernel has one`},
		{"invalid-group-quoted.yml", `line 4: groups: "1" is not an integer`},
		{"invalid-group-list.yml", `line 4: groups: a list is not an integer`},
		{"invalid-groups-scalar.yml", `line 4: groups: "5" is not a list`},
		{"invalid-max-events-fraction.yml", `line 6: max_events: "2.9" is not an integer`},
		{"invalid-max-events-tagged-fraction.yml", `line 6: max_events: "2.9" is not an integer`},
		{"invalid-max-events-quoted.yml", `line 6: max_events: "10" is not an integer`},
		{"invalid-max-events-empty.yml", `line 6: max_events: "~" is not an integer`},
		{"invalid-max-events-list.yml", `line 6: max_events: a list is not an integer`},
		{"invalid-receive-buffer-bytes-fraction.yml", `line 6: receive_buffer_bytes: "65536.7" is not an integer`},
		{"invalid-protocol-fraction.yml", `line 3: protocol: "2.5" is not an integer`},
		{"invalid-protocol-quoted-number.yml", `line 3: unknown protocol "2"`},
		{"invalid-protocol-hex-too-big.yml", `line 3: protocol 0x20 out of range 0-31`},
		{"invalid-event-names-fraction.yml", `line 6: event_names: "1.5" is not an integer`},
		{"invalid-event-names-quoted-type.yml", `line 6: event_names: "3" is not an integer`},
		{"invalid-event-names-negative-type.yml", "yaml: unmarshal errors:\n  line 6: cannot unmarshal !!int `-1` into uint16"},
		{"invalid-event-names-hex-type-too-big.yml", "yaml: unmarshal errors:\n  line 6: cannot unmarshal !!int `0x10000` into uint16"},
		{"invalid-event-names-same-key-twice.yml", `line 6: event_names lists a message type twice`},
		{"invalid-event-names-octal-and-decimal.yml", `line 8: event_names lists a message type twice`},
		{"invalid-event-names-number-name.yml", `line 6: event_names: type 3: "5" is not a string`},
		{"invalid-event-names-empty-name-value.yml", `line 6: event_names: type 3: "~" is not a string`},
		{"invalid-event-names-list.yml", `line 6: event_names: a list is not a mapping`},
		{"invalid-name-mapping.yml", `line 2: name: a mapping is not a string`},
		{"invalid-decoder-list.yml", `line 5: decoder: a list is not a string`},
		{"invalid-payload-info-mapping.yml", `line 6: payload_info: a mapping is not a boolean`},
		{"invalid-required-list.yml", `line 6: required: a list is not a boolean`},
		{"invalid-required-string.yml", "yaml: unmarshal errors:\n  line 6: cannot unmarshal !!str `yes please` into bool"},
		{"invalid-forget-after-number.yml", `line 6: forget_after: "5" is not a duration such as 30s, 5m or 1h`},
		{"invalid-forget-after-negative.yml", `line 6: forget_after: "-1m" is not a duration such as 30s, 5m or 1h`},
		{"invalid-forget-after-list.yml", `line 6: forget_after: a list is not a duration`},
		{"invalid-forget-after-too-long.yml", `line 6: forget_after 8d is longer than 1w`},
		{"invalid-objects-list.yml", `line 6: objects: a list is not a mapping`},
		{"invalid-objects-unknown-key.yml", `line 6: unknown key "includes" in objects (known keys: include, exclude)`},
		{"invalid-objects-twice.yml", "yaml: unmarshal errors:\n  line 6: mapping key \"exclude\" already defined at line 6"},
		{"invalid-objects-bad-regexp.yml", "line 7: objects: include: error parsing regexp: missing closing ): `eth(0`"},
		{"invalid-objects-mapping-regexp.yml", `line 7: objects: exclude: a mapping is not a regular expression`},
		{"invalid-group-33-on-usersock.yml", `source "s": groups: group 33 out of range 1-32 for protocol usersock (2)`},
		{"invalid-group-1024-on-usersock.yml", `source "s": groups: group 1024 out of range 1-32 for protocol usersock (2)`},
		{"invalid-group-2-32-1-on-usersock.yml", `source "s": groups: group 4294967295 out of range 1-32 for protocol usersock (2)`},
		{"invalid-group-2-32-1-on-29.yml", `source "s": groups: group 4294967295 out of range 1-1024 for protocol 29`},
		{"invalid-group-1025-on-route.yml", `source "s": groups: group 1025 out of range 1-1024 for protocol route (0)`},
		{"invalid-group-33-on-inet-diag.yml", `source "s": groups: group 33 out of range 1-32 for protocol sock_diag (4)`},
		{"invalid-group-2-32.yml", "yaml: unmarshal errors:\n  line 4: cannot unmarshal !!int `4294967296` into uint32"},
		{"invalid-unknown-route-group-name.yml", `line 4: groups: unknown group "ipv4_route" for protocol route (known: link, neigh, ipv4_ifaddr, ipv6_ifaddr)`},
		{"invalid-empty-route-group-name.yml", `line 4: groups: unknown group "" for protocol route (known: link, neigh, ipv4_ifaddr, ipv6_ifaddr)`},
		{"invalid-route-group-list.yml", `line 4: groups: a list is not an integer`},
		{"invalid-route-group-name-on-usersock.yml", `line 4: groups: "link" is not an integer`},
		{"invalid-route-group-name-on-a-bad-protocol.yml", `line 3: unknown protocol "nosuch"`},
		{"invalid-route-group-name-and-number-twice.yml", `source "s": groups: group 1 listed twice`},
		{"invalid-rtnetlink-on-usersock.yml", `source "s": the rtnetlink decoder reads protocol route (0)`},
		{"invalid-unknown-xfrm-group-name.yml", `line 4: groups: unknown group "expiry" for protocol xfrm (known: acquire, expire, sa, policy, aevents, report, migrate, mapping)`},
		{"invalid-xfrm-on-route.yml", `source "s": the xfrm decoder reads protocol xfrm (6)`},
		{"invalid-xfrm-on-a-group-it-does-not-read.yml", `source "s": groups: group 9 is not one the xfrm decoder reads: acquire (1), expire (2), sa (3), policy (4), aevents (5), report (6), migrate (7), mapping (8)`},
		{"invalid-audit-on-a-family.yml", `source "s": the audit decoder reads protocol audit (9)`},
		{"invalid-audit-on-another-group.yml", `source "s": groups: group 2 is not the audit decoder's: it reads group 1 (readlog)`},
		{"invalid-rtnetlink-on-a-family.yml", `source "s": the rtnetlink decoder reads protocol route (0)`},
		{"invalid-rtnetlink-on-a-route-group-it-does-not-read.yml", `source "s": groups: group 7 is not one the rtnetlink decoder reads: link (1), neigh (3), ipv4_ifaddr (5), ipv6_ifaddr (9)`},
		{"invalid-unknown-netfilter-group-name.yml", `line 4: groups: unknown group "conntrack_dying" for protocol netfilter (known: conntrack_new, conntrack_update, conntrack_destroy, conntrack_exp_new, conntrack_exp_update, conntrack_exp_destroy)`},
		{"invalid-conntrack-on-route.yml", `source "s": the conntrack decoder reads protocol netfilter (12)`},
		{"invalid-conntrack-on-nftables-group.yml", `source "s": groups: group 7 is not one the conntrack decoder reads: conntrack_new (1), conntrack_update (2), conntrack_destroy (3), conntrack_exp_new (4), conntrack_exp_update (5), conntrack_exp_destroy (6)`},
		{"invalid-proc-on-route.yml", `source "s": the proc decoder reads protocol connector (11)`},
		{"invalid-proc-on-another-connector-group.yml", `source "s": groups: group 2 is not the proc decoder's: it reads group 1 (CN_IDX_PROC)`},
		{"invalid-long-name.yml", `source 1: name is longer than 128 bytes`},
		{"invalid-event-names-reserved.yml", `line 6: event_names: type 3: name "__overflow__" starts with "__", which is reserved`},
		{"invalid-event-names-digits.yml", `line 6: event_names: type 3: name "5" is all digits, as the names of unnamed types are`},
		{"invalid-event-names-kernel-name.yml", `line 6: event_names: type 5: name "error" is the kernel's name for type 2`},
		{"invalid-event-names-kernel-name-on-kernel-type.yml", `line 6: event_names: type 1: name "done" is the kernel's name for type 3`},
		{"invalid-event-names-same-name.yml", `line 6: event_names: types 17 and 16 are both named "x"`},
		{"invalid-integer-alias-to-a-fraction.yml", `line 10: max_events: "2.9" is not an integer`},
		{"invalid-alias-to-itself.yml", `line 1: anchor "a" contains an alias to itself`},
		{"invalid-alias-expansion.yml", `configuration has more than 2097152 YAML nodes with its aliases expanded`},
		{"invalid-family-empty.yml", `line 5: family: "" is not 1-15 printable ASCII characters (GENL_NAMSIZ)`},
		{"invalid-family-number.yml", `line 3: family: "16" is not a string`},
		{"invalid-protocol-leading-zero.yml", `line 4: protocol: "010" ` + leadingZero + `10 for decimal or 0o10 for octal`},
		{"invalid-group-leading-zero.yml", `line 4: groups: "010" ` + leadingZero + `10 for decimal or 0o10 for octal`},
		{"invalid-group-leading-zero-not-octal.yml", `line 5: groups: "09" ` + leadingZero + `9 for decimal`},
		{"invalid-max-events-leading-zero.yml", `line 6: max_events: "-0_100" ` + leadingZero + `-100 for decimal or -0o100 for octal`},
		{"invalid-event-type-leading-zero.yml", `line 8: event_names: "017" ` + leadingZero + `17 for decimal or 0o17 for octal`},
		{"invalid-event-name-del.yml", `line 7: event_names: type 16: name "link\x7fflap" must be 1-128 bytes without control characters`},
		{"invalid-event-name-c1.yml", `line 7: event_names: type 16: name "link\u0085flap" must be 1-128 bytes without control characters`},
		{"invalid-payload-info-null.yml", `line 6: payload_info: "~" is not a boolean`},
		{"invalid-merge-unknown-key.yml", `line 8: unknown key "decodr" in source (known keys: name, protocol, family, groups, decoder, receive_buffer_bytes, max_events, payload_info, event_names, senders, required, forget_after, objects, mode, queue_length, input_interface)`},
		{"invalid-merge-duplicate-key.yml", "yaml: unmarshal errors:\n  line 11: mapping key \"name\" already defined at line 9"},
		{"invalid-merge-twice.yml", "yaml: unmarshal errors:\n  line 9: mapping key \"<<\" already defined at line 7"},
		{"invalid-merge-scalar.yml", `line 2: <<: "5" is not a mapping or a list of mappings`},
		{"invalid-merge-protocol-and-family.yml", "line 8: source has both protocol and family"},
		{"invalid-merge-event-type-twice.yml", "line 7: event_names lists a message type twice"},
	}
	files, err := filepath.Glob("testdata/invalid-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata, %d in the table: each file needs its error here", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatalf("Load succeeded, want error %q", tt.err)
			}
			if err.Error() != tt.err {
				t.Fatalf("error:\n got %q\nwant %q", err.Error(), tt.err)
			}
		})
	}
}

// TestParseDropMonitor: a drop_monitor source's mode, queue length and
// interface, with the defaults filled in.
func TestParseDropMonitor(t *testing.T) {
	for _, c := range []struct {
		name, keys string
		mode       string
		queueLen   uint32
		iface      bool
	}{
		{"defaults", "", ModePackets, DefaultQueueLength, false},
		{"packets", "mode: packets\n    queue_length: 100\n    input_interface: true\n", ModePackets, 100, true},
		{"summary", "mode: summary\n", ModeSummary, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte("sources:\n  - name: drops\n    family: NET_DM\n    groups: [events]\n    decoder: drop_monitor\n    " + c.keys))
			if err != nil {
				t.Fatal(err)
			}
			s := cfg.Sources[0]
			if s.Mode != c.mode || s.QueueLength != c.queueLen || s.InputInterface != c.iface {
				t.Fatalf("mode %q, queue_length %d, input_interface %t; want %q, %d, %t", s.Mode, s.QueueLength, s.InputInterface, c.mode, c.queueLen, c.iface)
			}
		})
	}
}
