# Tether's build. The Go code builds and tests without Node; the web console
# (web/, see docs/console.md) needs Node.js >= 20.19 and npm, and its browser
# tests need Chromium (Debian/Ubuntu: apt-get install -y chromium).
#
#   make dev     build the console and ./tether, then run `tether serve --dev`
#   make test    every Go test (with -race, never from the test cache), then
#                the console's browser tests
#   make build   ./tether with the console embedded
#   make web     only the console's bundle (internal/webui/dist/console)

GOTOOLCHAIN ?= local
export GOTOOLCHAIN
GO ?= go
NPM ?= npm
# Extra flags for go test, e.g. GOTESTFLAGS="-timeout 25m -run TestX".
GOTESTFLAGS ?=
# Flags of `tether serve --dev` under make dev, e.g. DEVFLAGS="--addr :9000".
DEVFLAGS ?=
# The binary make dev builds and runs.
DEVBIN ?= ./tether

BUNDLE := internal/webui/dist/console/index.html
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

.PHONY: dev build web test test-go test-web clean

# A built binary rather than `go run`: go run exits 1 whenever it is
# interrupted, whatever its program did, so Ctrl-C would end in
# "make: *** [dev] Error 1". tether serve exits 0 after a clean shutdown.
dev: $(BUNDLE)
	$(GO) build -o $(DEVBIN) ./cmd/tether
	exec $(DEVBIN) serve --dev $(DEVFLAGS)

build: $(BUNDLE)
	$(GO) build -o tether ./cmd/tether

web: $(BUNDLE)

# npm ci again only when the lock file changes.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && $(NPM) ci --no-audit --no-fund
	touch $@

# Node clients some Go tests drive (the real @ag-ui/client, ...): the Go
# tests skip them when their packages are missing, so make test installs
# them first.
# internal/terminal/screen/oracle is xterm.js, the oracle the terminal
# screen model is checked against.
TEST_CLIENTS := $(patsubst %/package.json,%/node_modules/.installed,$(wildcard clients/*/package.json internal/terminal/screen/oracle/package.json))

%/node_modules/.installed: %/package.json %/package-lock.json
	cd $* && $(NPM) ci --no-audit --no-fund
	touch $@

$(BUNDLE): web/node_modules/.installed $(WEB_SOURCES)
	cd web && $(NPM) run build

# Both suites run even when the first fails, so that one run shows both.
test:
	@status=0; $(MAKE) --no-print-directory test-go || status=1; \
	$(MAKE) --no-print-directory test-web || status=1; exit $$status

# -count=1: the README's test command runs the tests every time, never
# answering from Go's test cache (GOTESTFLAGS may repeat it).
test-go: $(TEST_CLIENTS)
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./...

# Builds tether with the console and drives it in headless Chromium.
test-web: $(BUNDLE)
	cd web && node --test --test-concurrency=1 --test-timeout=120000 e2e/

clean:
	rm -rf internal/webui/dist/console web/node_modules clients/*/node_modules internal/terminal/screen/oracle/node_modules test-output tether
