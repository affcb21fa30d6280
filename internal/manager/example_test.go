package manager_test

import (
	"context"
	"fmt"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/internal/manager"
)

// The exporter starts the sources of its configuration, then reloads it
// when told to: sources added start, changed ones are replaced, unchanged
// ones go on as they were.
func Example() {
	logger := log.NewNopLogger()
	// The exporter reads a file with config.Load.
	yml := "sources:\n  - {name: first, protocol: usersock, groups: [1], decoder: raw}\n"
	load := func() (*config.Config, error) { return config.Parse([]byte(yml)) }
	// ctx ends at shutdown, abandoning a load that takes long.
	ctx := context.Background()

	cfg, err := manager.LoadContext(ctx, load)
	if err != nil {
		fmt.Println(err)
		return
	}
	metrics := collector.New()
	sources := manager.New(logger, metrics)
	if err := sources.Apply(cfg); err != nil {
		fmt.Println(err)
		return
	}
	defer sources.StopAll()
	rl := manager.NewReloader("kevent.yml", load, sources.Apply, logger)
	prometheus.NewRegistry().MustRegister(metrics, rl)

	// The configuration changes; SIGHUP or POST /-/reload reload it.
	yml += "  - {name: second, protocol: usersock, groups: [2], decoder: raw}\n"
	if err := rl.Reload(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for _, sm := range metrics.Sources() {
		fmt.Println(sm.Name())
	}
	// Output:
	// first
	// second
}
