#!/usr/bin/env bash
# Container test for kevent_exporter, as CI runs it (as root, on a fresh
# Debian machine): installs Docker if needed, builds the static binary and the
# FROM scratch image, checks the image, the Kubernetes manifests, and the
# running container: host network vs. its own network namespace, the
# ConfigMap configuration, reloads and capabilities. See deploy/README.md.
#
# Prints one PASS, FAIL or SKIP line per check; exits non-zero on any FAIL.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "run as root: the test starts dockerd, runs containers and writes uevents" >&2
	exit 1
fi

started=$SECONDS
checks=0
failures=0
pass() { checks=$((checks + 1)); echo "PASS $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }
skip() { echo "SKIP $*"; }
# check DESCRIPTION COMMAND...: PASS if the command succeeds, else FAIL.
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# fatal DESCRIPTION [LOG]: a step the rest depends on failed.
fatal() {
	fail "$1"
	if [ -n "${2:-}" ] && [ -f "$2" ]; then tail -n 50 "$2"; fi
	exit 1
}

work=$(mktemp -d /tmp/kevent-container-test.XXXXXX)
image="kevent-exporter:test-$$"
containers=()
dockerd_pid=

cleanup() {
	local status=$?
	set +e
	if [ "$failures" -gt 0 ] && [ "${#containers[@]}" -gt 0 ]; then
		for c in "${containers[@]}"; do
			echo "--- docker logs $c (last 20 lines)"
			docker logs --tail 20 "$c" 2>&1
		done
	fi
	if [ "${#containers[@]}" -gt 0 ]; then
		docker rm -f "${containers[@]}" >/dev/null 2>&1
	fi
	docker rmi -f "$image" >/dev/null 2>&1
	if [ -n "$dockerd_pid" ]; then
		kill "$dockerd_pid" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$dockerd_pid" 2>/dev/null || break
			sleep 0.2
		done
	fi
	rm -rf "$work"
	if [ "$failures" -gt 0 ]; then
		echo "FAIL $failures of $checks checks failed ($((SECONDS - started))s)"
		status=1
	elif [ "$status" -eq 0 ]; then
		echo "PASS all $checks checks ($((SECONDS - started))s)"
	else
		echo "FAIL aborted with status $status after $checks checks ($((SECONDS - started))s)"
	fi
	exit "$status"
}
trap cleanup EXIT

# ---------------------------------------------------------------- packages
# Debian's python3-yaml goes with the system python3, not a pyenv one.
PY=/usr/bin/python3
pkgs=()
if ! command -v docker >/dev/null || { ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null; }; then
	pkgs+=(docker.io)
fi
command -v curl >/dev/null || pkgs+=(curl)
command -v make >/dev/null || pkgs+=(make)
if ! [ -x "$PY" ] || ! "$PY" -c 'import yaml' 2>/dev/null; then
	pkgs+=(python3-yaml)
fi
if [ "${#pkgs[@]}" -gt 0 ]; then
	echo "Installing ${pkgs[*]}"
	if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"; } >"$work/apt.log" 2>&1; then
		fatal "apt-get install ${pkgs[*]}" "$work/apt.log"
	fi
fi

# ---------------------------------------------------------------- dockerd
if ! docker info >/dev/null 2>&1; then
	echo "Starting dockerd"
	dockerd >"$work/dockerd.log" 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 120); do
		docker info >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	docker info >/dev/null 2>&1 || fatal "dockerd starts within 60s" "$work/dockerd.log"
fi

# ---------------------------------------------------------------- manifests
# Every file parses, and the objects fit together the way deploy/README.md
# says: labels, selectors, host network, ports, probes, config volume, and
# the unprivileged security context.
check_manifests() {
	"$PY" - deploy/kubernetes/base <<'EOF'
import os, sys, yaml

d = sys.argv[1]
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)

kust = yaml.safe_load(open(os.path.join(d, "kustomization.yaml")))
need(kust.get("kind") == "Kustomization", "kustomization.yaml: kind")
need(sorted(kust["resources"]) == sorted(f for f in os.listdir(d) if f.endswith(".yaml") and f != "kustomization.yaml"),
     "kustomization.yaml: resources must list every other manifest")
objs = {}
for f in kust["resources"]:
    for o in yaml.safe_load_all(open(os.path.join(d, f))):
        objs[o["kind"]] = o
        md = o["metadata"]
        need(md.get("namespace") == "monitoring", f"{f}: namespace monitoring")
        need(md.get("labels", {}).get("app.kubernetes.io/name") == "kevent-exporter", f"{f}: app.kubernetes.io/name label")
need(set(objs) == {"ConfigMap", "DaemonSet", "Service"}, f"kinds: {sorted(objs)}")

ds = objs["DaemonSet"]["spec"]
tmpl = ds["template"]
labels = tmpl["metadata"]["labels"]
need(ds["selector"]["matchLabels"].items() <= labels.items(), "DaemonSet selector must match its pod labels")
need(objs["Service"]["spec"]["selector"].items() <= labels.items(), "Service selector must match the pod labels")
need(objs["Service"]["spec"].get("clusterIP") == "None", "Service must be headless")
ann = tmpl["metadata"]["annotations"]
need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9736", "scrape annotations")
pod = tmpl["spec"]
need(pod.get("hostNetwork") is True, "hostNetwork: true")
need(pod.get("dnsPolicy") == "ClusterFirstWithHostNet", "dnsPolicy: ClusterFirstWithHostNet")
need({"operator": "Exists"} in pod.get("tolerations", []), "tolerate every taint")
psc = pod["securityContext"]
need(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65534, "pod runs as non-root 65534")
(c,) = pod["containers"]
need("--config.file=/etc/kevent_exporter/config.yml" in c["args"], "--config.file argument")
need({"name": "metrics", "containerPort": 9736, "protocol": "TCP"} in c["ports"], "metrics port 9736")
need(c["livenessProbe"]["httpGet"]["path"] == "/-/healthy", "liveness /-/healthy")
need(c["readinessProbe"]["httpGet"]["path"] == "/-/ready", "readiness /-/ready")
need(c["resources"]["requests"] and c["resources"]["limits"]["memory"], "resources")
sc = c["securityContext"]
need(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
     and sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), "container securityContext")
(vm,) = c["volumeMounts"]
(vol,) = [v for v in pod["volumes"] if v["name"] == vm["name"]]
need(vm["mountPath"] == "/etc/kevent_exporter", "config mounted at /etc/kevent_exporter")
need(vol["configMap"]["name"] == objs["ConfigMap"]["metadata"]["name"], "config volume names the ConfigMap")
need("config.yml" in objs["ConfigMap"]["data"], "ConfigMap has config.yml")
for e in errors:
    print("  manifest:", e)
sys.exit(1 if errors else 0)
EOF
}
check "Kubernetes manifests parse (python3-yaml) and are consistent (labels, selectors, hostNetwork, probes, config volume, securityContext)" check_manifests
# The deploy module's tests (cd deploy && go test ./...) render every
# kustomization with the kustomize API and decode it strictly; here kubectl's
# own kustomize renders them as a user's kubectl would.
if command -v kubectl >/dev/null; then
	for k in deploy/kubernetes deploy/kubernetes/overlays/*/; do
		check "kubectl kustomize ${k%/} renders" kubectl kustomize "$k" -o "$work/kustomize.yaml"
	done
else
	skip "kubectl kustomize: kubectl is not installed"
fi

# ---------------------------------------------------------------- build
arch=$(go env GOARCH)
version=$(cat VERSION 2>/dev/null || git describe --tags --dirty 2>/dev/null || echo dev)
version=${version#v}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

# The build context is a copy holding what the Dockerfile and .dockerignore
# expect, so the test leaves no .build/ in the work tree.
ctx=$work/context
mkdir -p "$ctx/.build/linux-$arch"
cp Dockerfile .dockerignore "$ctx/"
bin=$ctx/.build/linux-$arch/kevent_exporter
echo "Building $bin (version $version)"
# The Makefile's release build (static, -trimpath, version ldflags).
make crossbuild BUILD_DIR="$ctx/.build" PLATFORMS="linux/$arch" VERSION="$version" >"$work/build.log" 2>&1 ||
	fatal "make crossbuild of the static binary" "$work/build.log"
static_binary() {
	local info out
	info=$(go version -m "$bin") && out=$("$bin" --version 2>&1) &&
		grep -q 'CGO_ENABLED=0' <<<"$info" && grep -q "version $version (branch: .*, revision: $revision)" <<<"$out"
}
check "binary is static (CGO_ENABLED=0) and carries version $version" static_binary

docker build -t "$image" --build-arg "ARCH=$arch" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
	"$ctx" >"$work/docker-build.log" 2>&1 || fatal "docker build" "$work/docker-build.log"
pass "docker build"

# ---------------------------------------------------------------- image
size=$(docker image inspect -f '{{.Size}}' "$image")
check "image is small: $((size / 1000000)) MB < 30 MB" test "$size" -lt 30000000
image_files() {
	mkdir -p "$work/save"
	docker save "$image" | tar -x -C "$work/save"
	"$PY" - "$work/save" <<'EOF'
import json, os, subprocess, sys
d = sys.argv[1]
(m,) = json.load(open(os.path.join(d, "manifest.json")))
for layer in m["Layers"]:
    print(subprocess.run(["tar", "-t", "-f", os.path.join(d, layer)], check=True,
                         capture_output=True, text=True).stdout, end="")
EOF
}
files=$(image_files | sort | tr '\n' ' ')
layers=$(docker image inspect -f '{{len .RootFS.Layers}}' "$image")
check "image is FROM scratch: $layers layer, files: $files" test "$layers $files" = "1 bin/ bin/kevent_exporter "
cfg=$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.ExposedPorts}}' "$image")
check "image runs /bin/kevent_exporter as 65534:65534 and exposes 9736: $cfg" \
	test "$cfg" = '65534:65534 ["/bin/kevent_exporter"] {"9736/tcp":{}}'

# ---------------------------------------------------------------- helpers
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# run NAME DOCKER-RUN-ARGS... -- EXPORTER-ARGS...: starts a detached
# container hardened like the DaemonSet (read-only root, no capabilities,
# no privilege escalation) unless the arguments add some.
run() {
	local name=$1
	shift
	local opts=()
	while [ "$1" != "--" ]; do
		opts+=("$1")
		shift
	done
	shift
	containers+=("$name")
	docker run -d --name "$name" --read-only --cap-drop ALL --security-opt no-new-privileges \
		"${opts[@]}" "$image" "$@" >/dev/null || fatal "docker run $name"
}
scrape() { curl -fsS --max-time 5 "$1/metrics" 2>/dev/null || true; }
# value URL SERIES: the series' value, 0 if absent.
value() {
	scrape "$1" | awk -v s="$2" '$1 == s { v = $2 } END { print v == "" ? 0 : v + 0 }'
}
wait_ready() {
	for _ in $(seq 100); do
		curl -fsS --max-time 2 "$1/-/ready" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# wait_value URL SERIES WANT: waits up to 5s for the series to reach WANT.
wait_value() {
	for _ in $(seq 50); do
		[ "$(value "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
ready_and_up() { wait_ready "$1" && wait_value "$1" "$up" 1; }
not() { ! "$@"; }
status_field() { # CONTAINER FIELD: a field of its process's /proc status
	local pid
	pid=$(docker inspect -f '{{.State.Pid}}' "$1")
	awk -v f="$2:" '$1 == f { $1 = ""; print substr($0, 2) }' "/proc/$pid/status"
}
lo_change() { # N: fires N net/change uevents for the host's lo
	for _ in $(seq "$1"); do echo change >/sys/class/net/lo/uevent; done
}
up='kevent_source_up{source="uevent"}'
changes='kevent_events_total{event="net/change",object="lo",source="uevent"}'
rcvbuf='kevent_source_receive_buffer_bytes{source="uevent"}'

# ---------------------------------------------------------------- a. host network, embedded config
port=$(free_port)
host_url=http://127.0.0.1:$port
run "kevent-test-$$-host" --network host -- "--web.listen-address=127.0.0.1:$port"
check "a: host network, embedded config: /-/ready answers on $host_url" wait_ready "$host_url"
answers() {
	local m
	m=$(scrape "$1")
	grep -q '^kevent_exporter_build_info' <<<"$m" && curl -fsS "$1/-/healthy" >/dev/null
}
check "a: /metrics and /-/healthy answer" answers "$host_url"
check "a: $up 1" wait_value "$host_url" "$up" 1
check "a: the process runs as uid/gid 65534 with no capabilities" \
	test "$(status_field "kevent-test-$$-host" Uid)|$(status_field "kevent-test-$$-host" Gid)|$(status_field "kevent-test-$$-host" CapEff)" \
	= "65534 65534 65534 65534|65534 65534 65534 65534|0000000000000000"
before=$(value "$host_url" "$changes")
lo_change 3
wait_value "$host_url" "$changes" $((before + 3)) || true
sleep 0.5
after=$(value "$host_url" "$changes")
check "a: 3 writes to /sys/class/net/lo/uevent: $changes $before -> $after (+3)" test "$after" -eq $((before + 3))

# ---------------------------------------------------------------- b. the ConfigMap's configuration
mkdir -p "$work/etc"
chmod 755 "$work/etc"
"$PY" - deploy/kubernetes/base/configmap.yaml >"$work/etc/config.yml" <<'EOF'
import sys, yaml
sys.stdout.write(yaml.safe_load(open(sys.argv[1]))["data"]["config.yml"])
EOF
chmod 644 "$work/etc/config.yml"
check "b: configmap.yaml's config.yml is config/default.yml" cmp -s config/default.yml "$work/etc/config.yml"
config_check() {
	docker run --rm --network none -v "$1:/etc/kevent_exporter:ro" "$image" \
		--config.file=/etc/kevent_exporter/config.yml --config.check >"$work/config-check.log" 2>&1
}
check "b: --config.check passes inside the container on the ConfigMap's config" config_check "$work/etc"
mkdir -p "$work/bad"
printf 'sources:\n  - name: x\n    protocol: 99\n    groups: [1]\n    decoder: raw\n' >"$work/bad/config.yml"
chmod -R a+rX "$work/bad"
check "b: --config.check rejects a bad config (protocol 99)" not config_check "$work/bad"

# The directory is mounted as Kubernetes mounts the ConfigMap volume.
port=$(free_port)
cm_url=http://127.0.0.1:$port
run "kevent-test-$$-configmap" --network host -v "$work/etc:/etc/kevent_exporter:ro" -- \
	--config.file=/etc/kevent_exporter/config.yml "--web.listen-address=127.0.0.1:$port"
check "b: starts with --config.file=/etc/kevent_exporter/config.yml and $up 1" ready_and_up "$cm_url"

# Reload to a configuration with only the uevent source and an xfrm one
# (protocol 6: its kernel socket lacks NL_CFG_F_NONROOT_RECV), as one would
# after editing the ConfigMap; used again in e.
has_xfrm() { awk '$2 == 6 { found = 1 } END { exit !found }' /proc/net/netlink; }
has_xfrm || modprobe -q xfrm_user 2>/dev/null || true
xfrm=no
if has_xfrm; then xfrm=yes; fi
cat >"$work/etc/config.yml.new" <<'EOF'
sources:
  - name: uevent
    protocol: kobject_uevent
    groups: [1]
    decoder: uevent
  - name: xfrm
    protocol: xfrm
    groups: [1]
    decoder: raw
EOF
chmod 644 "$work/etc/config.yml.new"
mv "$work/etc/config.yml.new" "$work/etc/config.yml"
before=$(value "$cm_url" "$changes")
lo_change 1
wait_value "$cm_url" "$changes" $((before + 1)) || true
reloaded() {
	local m
	curl -fsS -X POST "$cm_url/-/reload" >/dev/null || return 1
	m=$(scrape "$cm_url")
	grep -q '^kevent_config_last_reload_successful 1$' <<<"$m" &&
		! grep -q 'source="seed"' <<<"$m" &&
		grep -q '^kevent_source_up{source="xfrm"}' <<<"$m" &&
		[ "$(value "$cm_url" "$changes")" = $((before + 1)) ]
}
check "b: POST /-/reload picks up the edited file (seed gone, xfrm added, uevent counts kept)" reloaded

# ---------------------------------------------------------------- c. why hostNetwork
# In the default bridge network the container has its own network namespace
# and its own uevent socket there. The host's lo belongs to the initial
# namespace, and the kernel sends a network device's uevents only to the
# namespace the device lives in.
port=$(free_port)
bridge_url=http://127.0.0.1:$port
bridge=kevent-test-$$-bridge
run "$bridge" -p "127.0.0.1:$port:9736" --
check "c: bridge network (own netns), port published on $bridge_url: ready and $up 1" ready_and_up "$bridge_url"
sleep 0.5
host_before=$(value "$host_url" "$changes")
bridge_before=$(value "$bridge_url" "$changes")
lo_change 3
wait_value "$host_url" "$changes" $((host_before + 3)) || true
sleep 1
host_after=$(value "$host_url" "$changes")
bridge_after=$(value "$bridge_url" "$changes")
check "c: the host's lo uevents reach the host-network container ($host_before -> $host_after) and not the bridge one ($bridge_before -> $bridge_after)" \
	test "$((host_after - host_before)) $((bridge_after - bridge_before))" = "3 0"

# Uevents of kobjects outside the network namespaces (no namespace tag: block,
# mem, usb...) go to every network namespace of the initial user namespace:
# these do reach the bridge container. /dev/null's is harmless to repeat.
mem='kevent_events_total{event="mem/change",object="null",source="uevent"}'
host_before=$(value "$host_url" "$mem")
bridge_before=$(value "$bridge_url" "$mem")
echo change >/sys/class/mem/null/uevent
wait_value "$bridge_url" "$mem" $((bridge_before + 1)) || true
wait_value "$host_url" "$mem" $((host_before + 1)) || true
host_after=$(value "$host_url" "$mem")
bridge_after=$(value "$bridge_url" "$mem")
check "c: but /dev/null's change uevent (no netns tag) reaches both (host $host_before -> $host_after, bridge $bridge_before -> $bridge_after)" \
	test "$((host_after - host_before)) $((bridge_after - bridge_before))" = "1 1"

# The converse: a uevent of the container's own lo reaches only the bridge
# container. sysfs shows the devices of the network namespace it is mounted
# in, so mount one in the container's namespace (a private mount namespace).
# Its superblock is shared with the container's read-only /sys: remount it rw
# (the container's own mount stays read-only).
pid=$(docker inspect -f '{{.State.Pid}}' "$bridge")
mkdir -p "$work/sys"
host_before=$(value "$host_url" "$changes")
bridge_before=$(value "$bridge_url" "$changes")
# shellcheck disable=SC2016 # $1 is the inner shell's
if nsenter "--net=/proc/$pid/ns/net" unshare --mount sh -c \
	'mount -t sysfs sysfs "$1" && mount -o remount,rw "$1" && echo change >"$1/class/net/lo/uevent"' sh "$work/sys" 2>"$work/nsenter.log"; then
	wait_value "$bridge_url" "$changes" $((bridge_before + 1)) || true
	sleep 0.5
	host_after=$(value "$host_url" "$changes")
	bridge_after=$(value "$bridge_url" "$changes")
	check "c: the container's own lo uevent reaches the bridge container ($bridge_before -> $bridge_after) and not the host-network one ($host_before -> $host_after)" \
		test "$((bridge_after - bridge_before)) $((host_after - host_before))" = "1 0"
else
	skip "c: could not write the container namespace's lo uevent: $(cat "$work/nsenter.log")"
fi

# ---------------------------------------------------------------- e. capabilities
# The kernel doubles the receive buffer it grants; without CAP_NET_ADMIN the
# request (8 MiB by default) is capped at net.core.rmem_max.
rmem_max=$(cat /proc/sys/net/core/rmem_max)
want=8388608
unpriv=$((2 * (want < rmem_max ? want : rmem_max)))
check "e: unprivileged: $rcvbuf is 2 x min(8 MiB, rmem_max $rmem_max) = $unpriv" \
	test "$(value "$host_url" "$rcvbuf")" = "$unpriv"
if [ "$xfrm" = yes ]; then
	sleep 0.5
	check "e: unprivileged: the xfrm source (no NL_CFG_F_NONROOT_RECV) stays down (EPERM)" \
		test "$(value "$cm_url" 'kevent_source_up{source="xfrm"}')" = 0
fi

# uid 65534 plus --cap-add: the runtime sets no ambient capabilities, so a
# non-root process gets none (as in Kubernetes): CAP_NET_ADMIN needs root.
port=$(free_port)
url=http://127.0.0.1:$port
run "kevent-test-$$-nonroot-cap" --network host --cap-add NET_ADMIN -v "$work/etc:/etc/kevent_exporter:ro" -- \
	--config.file=/etc/kevent_exporter/config.yml "--web.listen-address=127.0.0.1:$port"
wait_ready "$url" || true
check "e: uid 65534 with --cap-add NET_ADMIN has no effective capabilities" \
	test "$(status_field "kevent-test-$$-nonroot-cap" CapEff)" = 0000000000000000

# What deploy/README.md documents: root with only CAP_NET_ADMIN.
port=$(free_port)
url=http://127.0.0.1:$port
run "kevent-test-$$-netadmin" --network host --user 0:0 --cap-add NET_ADMIN -v "$work/etc:/etc/kevent_exporter:ro" -- \
	--config.file=/etc/kevent_exporter/config.yml "--web.listen-address=127.0.0.1:$port"
wait_ready "$url" || true
check "e: --user 0:0 --cap-drop ALL --cap-add NET_ADMIN: only CAP_NET_ADMIN effective" \
	test "$(status_field "kevent-test-$$-netadmin" CapEff)" = 0000000000001000
check "e: with CAP_NET_ADMIN: $rcvbuf is forced to 2 x 8 MiB" wait_value "$url" "$rcvbuf" $((2 * want))
if [ "$xfrm" = yes ]; then
	check "e: with CAP_NET_ADMIN the xfrm source is up" wait_value "$url" 'kevent_source_up{source="xfrm"}' 1
else
	skip "e: xfrm checks: no xfrm netlink socket (xfrm_user not loaded)"
fi

# ---------------------------------------------------------------- d. cleanup
# The EXIT trap removes the containers, the image and the work directory,
# and stops dockerd if this script started it.
