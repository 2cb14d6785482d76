# BitStorm. `make test` is what CI runs (.ci/run); `make demo` runs a whole swarm of
# bitstorm alone (tracker, seeder, leecher) on 127.0.0.1 and needs nothing else;
# `make bench` runs the client against real BitTorrent software on 127.0.0.1.

GO     ?= go
BIN    := bin/bitstorm
# Debian packages for the real-peer harness (internal/swarmtest).
DEBS   := python3-libtorrent opentracker mktorrent aria2 transmission-daemon transmission-cli iproute2 qbittorrent-nox rtorrent ffmpeg chromium
# Extra flags, e.g. make bench BENCHFLAGS='-size 256 -clients bitstorm,aria2c,libtorrent'
DEMOFLAGS  ?=
BENCHFLAGS ?=

.PHONY: all deps build test fuzz demo bench fmt clean

all: build

# Installs the Debian packages when one is missing and we are root; otherwise
# says what is missing (interop tests then skip, or fail under CI=true).
deps:
	@missing=""; \
	command -v opentracker >/dev/null 2>&1 || missing="$$missing opentracker"; \
	command -v mktorrent >/dev/null 2>&1 || missing="$$missing mktorrent"; \
	command -v aria2c >/dev/null 2>&1 || missing="$$missing aria2"; \
	command -v transmission-daemon >/dev/null 2>&1 || missing="$$missing transmission-daemon"; \
	command -v transmission-remote >/dev/null 2>&1 || missing="$$missing transmission-cli"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v qbittorrent-nox >/dev/null 2>&1 || missing="$$missing qbittorrent-nox"; \
	command -v rtorrent >/dev/null 2>&1 || missing="$$missing rtorrent"; \
	command -v ffprobe >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	/usr/bin/python3 -I -c 'import libtorrent' >/dev/null 2>&1 || missing="$$missing python3-libtorrent"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "deps: installing$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get -q update && \
		DEBIAN_FRONTEND=noninteractive apt-get -q install -y $(DEBS); \
	else \
		echo "deps: missing Debian packages:$$missing (run as root: make deps)"; \
	fi

build:
	$(GO) build -o $(BIN) ./cmd/bitstorm

test: deps
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	FUZZTIME=2s bash .ci/fuzz
	$(GO) test -race -timeout 30m ./...

# Every fuzz target for FUZZTIME each (a minute by default); crashers land in testdata/fuzz.
fuzz:
	FUZZTIME=$${FUZZTIME:-60s} bash .ci/fuzz

demo: build
	$(GO) run ./internal/swarmtest/cmd/demo -bitstorm $(BIN) $(DEMOFLAGS)

bench: deps build
	$(GO) run ./internal/swarmtest/cmd/bench -bitstorm $(BIN) $(BENCHFLAGS)

fmt:
	gofmt -w .

clean:
	rm -rf bin
