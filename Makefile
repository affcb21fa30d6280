# kevent_exporter release builds. `make help` lists the targets.
#
# Binaries carry their version (github.com/prometheus/common/version, shown
# by --version, in the startup log and in kevent_exporter_build_info): the
# VERSION file if there is one, else `git describe`, else "dev".

GO        ?= go
GOOS      ?= $(shell $(GO) env GOOS)
HOSTARCH  := $(shell $(GO) env GOARCH)
GOARCH    ?= $(HOSTARCH)
# Where crossbuild puts its binaries: $(BUILD_DIR)/<os>-<arch>/kevent_exporter,
# the layout the Dockerfile copies from.
BUILD_DIR ?= .build
PLATFORMS ?= linux/amd64 linux/arm64
DOCKER    ?= docker
IMAGE     ?= kevent-exporter
IMAGE_TAG ?= $(VERSION)

VERSION   ?= $(patsubst v%,%,$(shell cat VERSION 2>/dev/null || git describe --tags --dirty 2>/dev/null || echo dev))
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILDUSER ?= $(shell id -un)@$(shell hostname)
BUILDDATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
# Expanded once (a command-line value still wins), so that every binary of
# a crossbuild carries the same date.
GOOS      := $(GOOS)
GOARCH    := $(GOARCH)
VERSION   := $(VERSION)
REVISION  := $(REVISION)
BRANCH    := $(BRANCH)
BUILDUSER := $(BUILDUSER)
BUILDDATE := $(BUILDDATE)

version_pkg := github.com/prometheus/common/version
LDFLAGS := -s -w \
	-X $(version_pkg).Version=$(VERSION) \
	-X $(version_pkg).Revision=$(REVISION) \
	-X $(version_pkg).Branch=$(BRANCH) \
	-X $(version_pkg).BuildUser=$(BUILDUSER) \
	-X $(version_pkg).BuildDate=$(BUILDDATE)
# Static binaries, without local paths: they run FROM scratch and on any
# distribution.
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

.PHONY: all help build crossbuild test test-deploy lint vet staticcheck fmt-check image clean

all: lint build

help:
	@echo 'build        kevent_exporter for this machine ($(GOOS)/$(GOARCH)), in the working directory'
	@echo 'crossbuild   static binaries for $(PLATFORMS) in $(BUILD_DIR)/<os>-<arch>/'
	@echo 'test         go test ./... (as root: see README.md, "Tests"; .ci/run is the whole suite)'
	@echo 'test-deploy  the deployment tests: cd deploy && go vet ./... && go test ./...'
	@echo 'lint         gofmt, go vet and staticcheck (a tool in go.mod), for the exporter and the deploy module'
	@echo 'image        crossbuild for linux/$(GOARCH), then the container image $(IMAGE):$(IMAGE_TAG)'
	@echo 'clean        remove the binaries'
	@echo 'Version $(VERSION), revision $(REVISION)'

build:
	GOOS=$(GOOS) GOARCH=$(GOARCH) $(GOBUILD) -o kevent_exporter .

crossbuild: $(addprefix crossbuild-,$(subst /,-,$(PLATFORMS)))

# crossbuild-<os>-<arch>
crossbuild-%:
	@os=$(word 1,$(subst -, ,$*)); arch=$(word 2,$(subst -, ,$*)); \
	echo "Building $(BUILD_DIR)/$*/kevent_exporter ($(VERSION))"; \
	GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $(BUILD_DIR)/$*/kevent_exporter .

test:
	$(GO) test ./...

test-deploy:
	cd deploy && $(GO) vet ./... && $(GO) test ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...

# staticcheck is pinned in go.mod's tool block: the same version here, in
# CI and on every developer's machine.
staticcheck:
	$(GO) tool staticcheck ./...

lint: fmt-check vet staticcheck

# The Dockerfile copies $(BUILD_DIR)/linux-<arch>/kevent_exporter; the build
# context is only .build/ (see .dockerignore), so BUILD_DIR must stay .build.
image: crossbuild-linux-$(GOARCH)
	$(DOCKER) build -t $(IMAGE):$(IMAGE_TAG) \
		--build-arg ARCH=$(GOARCH) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		$(if $(filter-out $(HOSTARCH),$(GOARCH)),--platform linux/$(GOARCH)) .

clean:
	rm -rf $(BUILD_DIR) kevent_exporter
