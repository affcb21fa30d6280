# kevent_exporter container image.
#
# The image holds nothing but a statically linked binary: build it on the
# host first, then the image. `make image` does both (see the Makefile and
# deploy/README.md):
#
#   make crossbuild         # .build/linux-{amd64,arm64}/kevent_exporter, with version information
#   docker build -t kevent-exporter .
#
# For another architecture pass --build-arg ARCH=<arch> (and --platform
# linux/<arch>), or `make image GOARCH=arm64`.
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
