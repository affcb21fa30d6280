#!/usr/bin/env bash
# The deployment tests, as CI runs them (as root, on a fresh Debian
# machine): installs the Debian packages they need when missing
# (prometheus for prometheus and promtool, systemd for systemd-analyze,
# util-linux for setpriv), fetches and verifies the deploy module's pinned
# modules, builds helm (go tool helm: the first build takes minutes), then
# runs go vet and go test in deploy/. See README.md, "Tests".
#
#   sudo bash deploy/check.sh            # everything
#   sudo bash deploy/check.sh -run Helm  # more go test flags
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
	echo "run as root: the tests run the exporter in a private network namespace, mount and switch users" >&2
	exit 1
fi

section() { printf '\n=== deploy: %s (%s)\n' "$1" "$(date -u +%T)"; }

section "Packages"
pkgs=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || pkgs+=(prometheus)
command -v systemd-analyze >/dev/null || pkgs+=(systemd)
command -v setpriv >/dev/null || pkgs+=(util-linux)
# The live test's conntrack source: a rule that switches tracking on, a flush.
command -v iptables-legacy >/dev/null || pkgs+=(iptables)
command -v conntrack >/dev/null || pkgs+=(conntrack)
if [ "${#pkgs[@]}" -gt 0 ]; then
	echo "Installing ${pkgs[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi
prometheus --version 2>&1 | head -1
systemd-analyze --version | head -1

section "Go modules (deploy/go.mod; the exporter's module through replace ../)"
go mod download
go mod verify
(cd .. && go mod download)
# deploy/go.mod lists what the exporter's packages need too: a new
# dependency of theirs needs `go mod tidy` here.
if ! go mod tidy -diff >/dev/null; then
	go mod tidy -diff || true
	echo "deploy/go.mod or go.sum is not tidy (did the exporter's go.mod change?): run cd deploy && go mod tidy" >&2
	exit 1
fi

section "helm (go tool helm, pinned in deploy/go.mod)"
go tool helm version --short

section "go vet"
go vet ./...

section "go test"
# Not cached: the tests read files go test does not track (the charts, the
# manifests, the rules, the dashboard, the exporter's sources).
go test -count=1 "$@" ./...
