// Command kevent_exporter exports Linux kernel netlink multicast events as
// Prometheus metrics.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/internal/logging"
	"github.com/kevent-exporter/kevent_exporter/internal/manager"
	"github.com/kevent-exporter/kevent_exporter/internal/scrape"
	"github.com/kevent-exporter/kevent_exporter/internal/sigexit"
	"github.com/kevent-exporter/kevent_exporter/monitor"
)

const exporterName = "kevent_exporter"

// The exporter's own endpoints, beside the metrics and the landing page.
const (
	healthyPath = "/-/healthy"
	readyPath   = "/-/ready"
	reloadPath  = "/-/reload"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// The subcommand comes first; everything else is the exporter, whose
	// flags stay as they were.
	if len(args) > 0 && args[0] == "monitor" {
		return monitor.Main(exporterName, args[1:], os.Stdout, os.Stderr)
	}
	app := kingpin.New(exporterName, "Exports Linux kernel netlink multicast events as Prometheus metrics. "+
		"'"+exporterName+" monitor --help' shows how to print the events as they arrive instead.")
	var (
		configFile   = app.Flag("config.file", "YAML configuration file; without it the embedded default is used.").String()
		configCheck  = app.Flag("config.check", "Check the configuration and exit.").Bool()
		metricsPath  = app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		maxRequests  = app.Flag("web.max-requests", "Maximum number of concurrent scrapes; 0 means no limit.").Default("40").Int()
		logLevel     = app.Flag("log.level", "Only log messages with this severity or above: debug, info, warn, error.").Default("info").Enum("debug", "info", "warn", "error")
		logFormat    = app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").Enum("logfmt", "json")
		toolkitFlags = kingpinflag.AddFlags(app, ":9736")
	)
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	app.Validate(func(*kingpin.Application) error { return checkTelemetryPath(*metricsPath) })
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	logger, slogger, err := logging.New(os.Stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}

	// Caught from the start: a SIGHUP's default action would kill a
	// starting exporter.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)

	loadConfig := func() (*config.Config, error) {
		if *configFile == "" {
			return config.Default(), nil
		}
		return config.Load(*configFile)
	}
	// Reading the file may take long (a large file parses in seconds):
	// a signal must not wait for it. A first signal shuts down, and the
	// sources read what is queued on their sockets, which can take
	// seconds; a second one exits at once.
	shutdown, cancelShutdown := context.WithCancel(context.Background())
	defer cancelShutdown()
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		select {
		case sig := <-term:
			level.Info(logger).Log("msg", "Shutting down; a second signal exits at once", "signal", sig)
			cancelShutdown()
		case <-returned:
			return
		}
		select {
		case sig := <-term:
			level.Warn(logger).Log("msg", "Signal received again: exiting at once, without waiting for the sources to stop", "signal", sig)
			os.Exit(sigexit.Status(sig, 1))
		case <-returned:
		}
	}()
	cfg, err := manager.LoadContext(shutdown, loadConfig)
	if shutdown.Err() != nil {
		level.Info(logger).Log("msg", "Interrupted while loading the config", "file", *configFile)
		if *configCheck {
			return 1
		}
		return 0
	}
	if err != nil {
		level.Error(logger).Log("msg", "Error loading config", "file", *configFile, "err", err)
		return 1
	}
	if *configCheck {
		level.Info(logger).Log("msg", "Config is valid", "file", *configFile, "sources", len(cfg.Sources))
		return 0
	}

	level.Info(logger).Log("msg", "Starting "+exporterName, "version", version.Info())
	level.Info(logger).Log("msg", "Build context", "build_context", version.BuildContext())

	metrics := collector.New()
	sources := manager.New(logger, metrics)
	if err := sources.Apply(cfg); err != nil {
		level.Error(logger).Log("msg", "Error starting sources", "err", err)
		return 1
	}
	defer sources.StopAll()
	rl := manager.NewReloader(*configFile, loadConfig, sources.Apply, logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics, rl,
		versioncollector.NewCollector(exporterName),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	mux := http.NewServeMux()
	// The scrape handler builds each response in memory before writing
	// it, so that clients that do not read cannot hold every slot.
	mux.Handle(*metricsPath, promhttp.InstrumentMetricHandler(reg, scrape.NewHandler(reg, scrape.Options{
		MaxRequestsInFlight: *maxRequests,
		Logger:              logger,
		Registry:            reg,
	})))
	mux.HandleFunc(healthyPath, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc(readyPath, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Ready")
	})
	mux.HandleFunc(reloadPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		if err := rl.Reload(shutdown); err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, manager.ErrShuttingDown):
				code = http.StatusServiceUnavailable
			case errors.Is(err, manager.ErrSuperseded):
				// A reload that began later has decided.
				code = http.StatusConflict
			}
			http.Error(w, fmt.Sprintf("failed to reload config: %s", err), code)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	})
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "kevent exporter",
			Description: "Prometheus exporter for Linux kernel netlink multicast events",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: *metricsPath, Text: "Metrics"},
				{Address: healthyPath, Text: "Health"},
			},
		})
		if err != nil {
			level.Error(logger).Log("err", err)
			return 1
		}
		mux.Handle("/", landing)
	}

	srv := &http.Server{
		Handler: mux,
		// A slow or stuck client cannot hold a connection open forever.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- web.ListenAndServe(srv, toolkitFlags, slogger)
	}()

	status := 0
loop:
	for {
		select {
		case <-hup:
			// In the background, so that SIGTERM is not kept waiting.
			go rl.Reload(shutdown)
		case <-shutdown.Done():
			break loop
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				level.Error(logger).Log("msg", "HTTP server failed", "err", err)
				status = 1
			}
			break loop
		}
	}
	cancelShutdown()
	// The sources stop while the HTTP server does.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		sources.StopAll()
	}()
	defer func() { <-stopped }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return status
}

// checkTelemetryPath says why p cannot be --web.telemetry-path, which
// http.ServeMux takes as a pattern: it must be a clean absolute path of
// RFC 3986's path characters, not percent-encoded (a space would make the
// start of it a method, braces a wildcard), and not an endpoint of the
// exporter's own. A trailing slash serves the path's subtree, as the mux
// does.
func checkTelemetryPath(p string) error {
	const flag = "--web.telemetry-path"
	clean := path.Clean(p)
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%s %q must be an absolute path, such as /metrics", flag, p)
	case strings.ContainsFunc(p, func(r rune) bool {
		return r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("/-._~!$&'()*+,;=:@", r))
	}):
		return fmt.Errorf("%s %q may have only letters, digits and the characters /-._~!$&'()*+,;=:@", flag, p)
	case p != clean && (p != clean+"/" || clean == "/"):
		return fmt.Errorf("%s %q is not a clean path (%s)", flag, p, clean)
	case p == healthyPath || p == readyPath || p == reloadPath:
		return fmt.Errorf("%s %q is the path of one of the exporter's own endpoints (%s, %s, %s)", flag, p, healthyPath, readyPath, reloadPath)
	}
	return nil
}
