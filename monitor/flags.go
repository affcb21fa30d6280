package monitor

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"go.yaml.in/yaml/v3"

	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// cmdlineName names the source given by --protocol or --family.
const cmdlineName = "cmdline"

// flags are the monitor's command-line flags, all defined by parseFlags.
type flags struct {
	configFile string
	sources    []string

	// One source on the command line, in the config's terms.
	protocol string
	family   string
	groups   []string
	decoder  string
	senders  string

	// event and object narrow the output to the events whose name and
	// object they match, whole (compiled by parseFlags).
	event, object string
	eventRE       *regexp.Regexp
	objectRE      *regexp.Regexp

	output    string
	count     uint64
	timeout   time.Duration
	logLevel  string
	logFormat string
}

// parseFlags parses the monitor's command line, args, for the command
// called name ("kevent_exporter monitor"). Help and usage go to stderr.
func parseFlags(name string, args []string, stderr io.Writer) (*flags, error) {
	app := kingpin.New(name, "Prints the events of the exporter's sources as they arrive, one line each, "+
		"with the loss, decode errors and source state it detects. Sources are the configuration's, all of them or those "+
		"named with --source, or one described by --protocol or --family, --groups and --decoder. Exit status: 0 done, "+
		"1 --timeout passed before --count events, 2 bad flags or configuration, no source could be opened, or stdout failed.")
	app.UsageWriter(stderr).ErrorWriter(stderr)
	var f flags
	app.Flag("config.file", "YAML configuration file; without it the embedded default is used.").StringVar(&f.configFile)
	app.Flag("source", "Monitor the configured source NAME; repeat for more. Default: all of them.").PlaceHolder("NAME").StringsVar(&f.sources)
	app.Flag("protocol", "Monitor one source on this netlink protocol (a number 0-31 or a name, as in the config) instead of the configuration's.").StringVar(&f.protocol)
	app.Flag("family", "Monitor one source on this generic netlink family (a name, as in the config) instead of the configuration's.").StringVar(&f.family)
	app.Flag("groups", "The command-line source's multicast groups, as the config's groups: numbered from 1 for a protocol (route's, netfilter's, xfrm's and audit's also by name), names for a family; comma-separated or repeated.").PlaceHolder("1,2").StringsVar(&f.groups)
	app.Flag("decoder", "The command-line source's decoder: "+strings.Join(decoder.Names, ", ")+".").StringVar(&f.decoder)
	app.Flag("senders", "Whose datagrams the command-line source decodes: "+strings.Join(srcinfo.SendersValues(), ", ")+"; default: the protocol's usual senders.").StringVar(&f.senders)
	app.Flag("event", "Print only the events whose name this RE2 regular expression matches, whole: e.g. 'link/(up|down)'. Notices are printed all the same.").PlaceHolder("REGEX").StringVar(&f.event)
	app.Flag("object", "Print only the events whose object this RE2 regular expression matches, whole: e.g. 'eth0|bond.*'. The sources' objects filters, which name series on /metrics, do not narrow the monitor.").PlaceHolder("REGEX").StringVar(&f.object)
	app.Flag("output", "Output format: text (for people) or json (one object per line).").Default("text").EnumVar(&f.output, "text", "json")
	app.Flag("count", "Exit after printing N events; 0: no limit.").PlaceHolder("N").Uint64Var(&f.count)
	app.Flag("timeout", "Exit after this long, e.g. 10s, though not before each source has attached or been reported down (half a second at most); 0: no limit.").PlaceHolder("DURATION").DurationVar(&f.timeout)
	app.Flag("log.level", "Only log messages with this severity or above: debug, info, warn, error.").Default("info").EnumVar(&f.logLevel, "debug", "info", "warn", "error")
	app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").EnumVar(&f.logFormat, "logfmt", "json")
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	if f.timeout < 0 {
		return nil, errors.New("--timeout must not be negative")
	}
	var err error
	if f.event != "" {
		if f.eventRE, err = config.WholeMatch(f.event); err != nil {
			return nil, fmt.Errorf("--event: %v", err)
		}
	}
	if f.object != "" {
		if f.objectRE, err = config.WholeMatch(f.object); err != nil {
			return nil, fmt.Errorf("--object: %v", err)
		}
	}
	return &f, nil
}

// format is the output format --output names.
func (f *flags) format() Format {
	if f.output == "json" {
		return JSON
	}
	return Text
}

// config returns the sources f asks for, checked as the exporter checks
// its configuration.
func (f *flags) config() (*config.Config, error) {
	if f.protocol != "" && f.family != "" {
		return nil, errors.New("--protocol and --family both name the command-line source's netlink: give one")
	}
	if f.protocol == "" && f.family == "" {
		if len(f.groups) > 0 || f.decoder != "" || f.senders != "" {
			return nil, errors.New("--groups, --decoder and --senders describe a command-line source: give --protocol or --family too")
		}
		cfg := config.Default()
		if f.configFile != "" {
			var err error
			if cfg, err = config.Load(f.configFile); err != nil {
				return nil, err
			}
		}
		return selectSources(cfg, f.sources)
	}
	flag := "--protocol"
	if f.family != "" {
		flag = "--family"
	}
	if f.configFile != "" || len(f.sources) > 0 {
		return nil, errors.New(flag + " describes a source of its own: it cannot be combined with --config.file or --source")
	}
	if len(f.groups) == 0 || f.decoder == "" {
		return nil, errors.New(flag + " needs --groups and --decoder")
	}
	return f.cmdlineSource()
}

// selectSources keeps the sources of cfg named in names, in the order of
// names; no names keeps them all.
func selectSources(cfg *config.Config, names []string) (*config.Config, error) {
	if len(names) == 0 {
		return cfg, nil
	}
	var out config.Config
	for _, n := range names {
		i := slices.IndexFunc(cfg.Sources, func(s config.Source) bool { return s.Name == n })
		if i < 0 {
			// A built-in source the configuration leaves out.
			if sc, ok := config.OptIn(n); ok {
				out.Sources = append(out.Sources, sc)
				continue
			}
			known := make([]string, len(cfg.Sources))
			for j, s := range cfg.Sources {
				known[j] = s.Name
			}
			return nil, fmt.Errorf("no source named %q in the configuration (it has %s)", n, strings.Join(known, ", "))
		}
		if !slices.ContainsFunc(out.Sources, func(s config.Source) bool { return s.Name == n }) {
			out.Sources = append(out.Sources, cfg.Sources[i])
		}
	}
	return &out, nil
}

// cmdlineSource makes the source of --protocol or --family, --groups,
// --decoder and --senders. It is written as a configuration and parsed,
// the protocol and groups as YAML plain scalars, so that the flags are
// read as the same text in a file is: a protocol or group by number or
// name, and checked the same way.
func (f *flags) cmdlineSource() (*config.Config, error) {
	src := map[string]any{"name": cmdlineName, "decoder": f.decoder}
	if f.family != "" {
		src["family"] = f.family
	} else {
		src["protocol"] = plainScalar(f.protocol)
	}
	var groups []*yaml.Node
	for _, list := range f.groups {
		for g := range strings.SplitSeq(list, ",") {
			g = strings.TrimSpace(g)
			if g == "" {
				return nil, fmt.Errorf("--groups: an empty group in %q", list)
			}
			groups = append(groups, plainScalar(g))
		}
	}
	src["groups"] = groups
	if f.senders != "" {
		src["senders"] = f.senders
	}
	b, err := yaml.Marshal(map[string]any{"sources": []any{src}})
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(b)
	if err != nil {
		// The lines are those of the YAML made here, not the user's.
		return nil, fmt.Errorf("command-line source: %s", yamlLine.ReplaceAllString(err.Error(), ""))
	}
	return cfg, nil
}

// plainScalar is v as YAML would read it unquoted in a file.
func plainScalar(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: v}
}

// yamlLine matches the line numbers in configuration errors.
var yamlLine = regexp.MustCompile(`\bline \d+: `)
