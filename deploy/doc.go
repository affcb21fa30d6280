// Package deploy holds kevent_exporter's deployment files and their tests:
// the Kubernetes manifests (kustomize base, components and overlays), the
// Helm chart, the Prometheus alerts and their tests, the Grafana dashboard
// and the systemd unit. It is a Go module of its own, so that Helm,
// kustomize and the Kubernetes API types stay out of the exporter's
// go.mod. See README.md.
//
//	go generate   # rewrite the files that repeat others (internal/generate)
//	go test ./... # render, decode and test everything (as root for all of it)
package deploy

//go:generate go run ./internal/generate/cmd
