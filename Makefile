# sealmail — see README.md. `make test` is the gate CI runs.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
SMTP     ?= 127.0.0.1:2525
HTTPS    ?= 127.0.0.1:8443
FUZZTIME ?= 30s

.PHONY: build run test test-short crash bench bench-large fuzz lint clean deb screenshots

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sealmail ./cmd/sealmail

# A development archive and reader under ./var with a generated key and first
# users: NOT for production (the identity lies next to the archive; the
# passwords are printed). The receiver and the reader run until Ctrl-C.
run: build
	SMTP=$(SMTP) HTTPS=$(HTTPS) ./scripts/run.sh

# The CI gate: the lint, then every test with the race detector.
test: lint
	@echo "== go test"; $(GO) test -race -shuffle=on -timeout 20m ./...
	@echo "== go test third_party/go-smtp (the patched fork)"; cd third_party/go-smtp && $(GO) test -race -timeout 5m ./...

test-short:
	$(GO) test -short ./...

# The long crash loop (not part of `make test`, which runs 3 cycles): kill -9
# of the real daemon under load from 8 SMTP clients, every acknowledged
# message checked byte-exact after each restart.
CRASH_CYCLES ?= 100
crash:
	SEALMAIL_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -run '^TestCrashLoop$$' -count=1 -timeout 120m -v ./cmd/sealmail/

# Load benchmarks against yardsticks measured in the same run (see
# docs/benchmarks.md): ingest vs Postfix's smtp-sink, indexing and queries vs
# notmuch, time to searchable and the rebuild rate through the reader vs
# notmuch, backup and restore vs cp.
bench: build
	./bench/ingest.sh
	./bench/index.sh 20000 5
	./bench/search.sh
	./bench/backup.sh

# Queries at 1,000,000 messages (100,000 generated, indexed 10 times): long
# (the build alone is 1M / the indexing rate of bench/index.sh) and about
# 1.5 GB of disk for the mail, more for the index: not part of bench.
bench-large:
	./bench/index-large.sh 100000 10 20

# The SMTP session fuzzer runs with the race detector and a memory limit
# (GOMEMLIMIT for the runtime, and FuzzSession fails an input that grows the
# heap beyond its own bound); the patched go-smtp's DATA reader is fuzzed
# in its own module.
FUZZMEM ?= 1GiB
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			race=; case "$$pkg $$f" in */smtpd\ FuzzSession) race=-race;; esac; \
			echo "== $$pkg $$f $$race"; GOMEMLIMIT=$(FUZZMEM) $(GO) test $$race -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done
	@echo "== third_party/go-smtp FuzzDataReader"; cd third_party/go-smtp && $(GO) test -run '^$$' -fuzz '^FuzzDataReader$$' -fuzztime $(FUZZTIME) .

# gofmt, go mod tidy, go vet, staticcheck (every check, unused included:
# staticcheck.conf) and errcheck (errcheck_excludes.txt says which errors
# may be dropped). The linters are pinned and run through the module proxy.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
ERRCHECK    ?= github.com/kisielk/errcheck@v1.9.0

lint:
	@echo "== gofmt"; out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@echo "== go mod tidy -diff"; $(GO) mod tidy -diff
	@echo "== go vet"; $(GO) vet ./...
	@echo "== staticcheck"; $(GO) run $(STATICCHECK) ./...
	@echo "== errcheck"; $(GO) run $(ERRCHECK) -ignoretests -exclude errcheck_excludes.txt ./...

# Screenshots of the web interface's main pages at laptop and phone size,
# taken by its browser test (headless Chromium) into $(SHOTS); the four
# docs/web.md shows (the README the first two) are copied into
# docs/screenshots/.
SHOTS ?= $(CURDIR)/var/screenshots
screenshots:
	SEALMAIL_SCREENSHOTS=$(SHOTS) $(GO) test -count=1 -run '^TestMainPages$$' ./web/
	mkdir -p docs/screenshots
	cp $(SHOTS)/search.png $(SHOTS)/message.png $(SHOTS)/users.png $(SHOTS)/enrol-phone.png docs/screenshots/

# The Debian package dist/sealmail_VERSION-1_amd64.deb (packaging/deb/build.sh,
# README "Install from the Debian package"). nfpm runs through the module
# proxy like the linters: as a tool dependency it would pull some 70 modules
# into go.mod and raise the daemon's own golang.org/x versions.
NFPM ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
DIST ?= dist
deb:
	GO=$(GO) NFPM=$(NFPM) DIST=$(DIST) ./packaging/deb/build.sh

clean:
	rm -rf bin dist
