package monitor

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/config"
)

func TestFlagsConfig(t *testing.T) {
	cfg, err := (&flags{protocol: "usersock", groups: []string{"3,1", "2"}, decoder: "raw", senders: "any"}).config()
	if err != nil {
		t.Fatal(err)
	}
	want := config.DefaultSource
	want.Name, want.Protocol, want.Groups, want.Decoder, want.Senders = "cmdline", 2, []uint32{1, 2, 3}, "raw", "any"
	if len(cfg.Sources) != 1 || !cmp.Equal(want, cfg.Sources[0]) {
		t.Errorf("command-line source %+v, want %+v", cfg.Sources, want)
	}
	if cfg, err := (&flags{protocol: "29", groups: []string{"2"}, decoder: "kevent"}).config(); err != nil || cfg.Sources[0].Protocol != 29 {
		t.Errorf("--protocol=29: %+v, %v", cfg, err)
	}
	// Group names where the configuration takes them.
	f := &flags{protocol: "route", groups: []string{"link, IPv6_ifaddr", "3"}, decoder: "rtnetlink"}
	fileCfg, err := config.Parse([]byte("sources:\n  - {name: cmdline, protocol: route, groups: [link, IPv6_ifaddr, 3], decoder: rtnetlink}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := f.config(); err != nil || !cmp.Equal(fileCfg.Sources, cfg.Sources) {
		t.Errorf("--protocol=route --groups=link,IPv6_ifaddr,3: %+v, %v; want %+v", cfg, err, fileCfg.Sources)
	}

	cfg, err = (&flags{sources: []string{"kevent", "uevent", "kevent"}}).config()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range cfg.Sources {
		names = append(names, s.Name)
	}
	if !cmp.Equal(names, []string{"kevent", "uevent"}) {
		t.Errorf("--source kevent --source uevent --source kevent: sources %v", names)
	}

	// A built-in source the default configuration leaves out.
	cfg, err = (&flags{sources: []string{"drops"}}).config()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 1 || cfg.Sources[0].Decoder != "drop_monitor" || cfg.Sources[0].Family != "NET_DM" || cfg.Sources[0].Mode != config.ModePackets {
		t.Errorf("--source drops: %+v", cfg.Sources)
	}
	// A configured one of that name wins.
	path := filepath.Join(t.TempDir(), "drops.yml")
	if err := os.WriteFile(path, []byte("sources:\n  - {name: drops, protocol: 2, groups: [1], decoder: raw}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err := (&flags{configFile: path, sources: []string{"drops"}}).config(); err != nil || cfg.Sources[0].Decoder != "raw" {
		t.Errorf("--config.file with a source drops --source drops: %+v, %v", cfg, err)
	}
}

func TestParseFlags(t *testing.T) {
	f, err := parseFlags(testName, []string{"--output=json", "--count=3", "--timeout=2s", "--groups=1", "--groups=2,3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.format() != JSON || f.count != 3 || f.timeout.String() != "2s" || !cmp.Equal(f.groups, []string{"1", "2,3"}) {
		t.Errorf("parsed %+v", f)
	}
	if f, err := parseFlags(testName, nil, io.Discard); err != nil || f.format() != Text || f.logLevel != "info" || f.logFormat != "logfmt" {
		t.Errorf("defaults: %+v, %v", f, err)
	}
	for _, args := range [][]string{{"--timeout=-1s"}, {"--output=xml"}, {"--count=-1"}, {"stray"}} {
		if _, err := parseFlags(testName, args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
