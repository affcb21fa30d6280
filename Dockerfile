# kevent_exporter container image.
#
# The image holds nothing but a statically linked binary: build it on the
# host first (see deploy/README.md), then build the image:
#
#   CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath \
#       -o .build/linux-amd64/kevent_exporter .
#   docker build -t kevent-exporter .
#
# For another architecture: build into .build/linux-<arch>/ and pass
# --build-arg ARCH=<arch> (and --platform linux/<arch>).
#
# The configuration is embedded in the binary (config/default.yml); mount
# your own at /etc/kevent_exporter/config.yml and pass
# --config.file=/etc/kevent_exporter/config.yml.
FROM scratch

ARG ARCH="amd64"
ARG OS="linux"
# Optional, for the image labels only (the binary carries its own version).
ARG VERSION="dev"
ARG REVISION="unknown"

LABEL org.opencontainers.image.title="kevent_exporter" \
      org.opencontainers.image.description="Prometheus exporter for Linux kernel netlink multicast events" \
      org.opencontainers.image.source="https://github.com/kevent-exporter/kevent_exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY .build/${OS}-${ARCH}/kevent_exporter /bin/kevent_exporter

# Unprivileged by default: kobject uevents, rtnetlink and the reference module
# (kmod/) create their kernel sockets with NL_CFG_F_NONROOT_RECV, so any user
# may subscribe. Classic protocols without that flag (xfrm, the seed module,
# ...) need CAP_NET_ADMIN: see deploy/README.md, "Capabilities".
USER 65534:65534

EXPOSE 9736
ENTRYPOINT ["/bin/kevent_exporter"]
