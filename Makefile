# Every target installs dependencies from the lockfile when node_modules is missing or stale,
# so a fresh clone needs nothing but Node >= 20.19 and make.
SHELL := /bin/bash
.DEFAULT_GOAL := build
NODE_MODULES := node_modules/.installed
VITEST := npx --no-install vitest run
RESULTS := test-results

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: deps build processbin schema test test-unit test-integration lint sim bench run clean

deps: $(NODE_MODULES)

build: $(NODE_MODULES)
	node scripts/build.mjs

processbin: $(NODE_MODULES)
	node scripts/build.mjs processbin

## The config's JSON Schema the repository keeps (examples point at it): run after changing a config key.
schema: build
	cp dist/monoceros.schema.json schema/monoceros.schema.json

## Every test: unit (in-memory workers), simulation, integration (real processes).
test: build
	@scripts/ensure-test-tools.sh
	@mkdir -p $(RESULTS)
	$(VITEST) --reporter=default --reporter=json --outputFile.json=$(RESULTS)/vitest.json

## Only the tests that use in-memory workers; no build needed, well under a minute.
test-unit: $(NODE_MODULES)
	$(VITEST) --project unit

test-integration: build
	@scripts/ensure-test-tools.sh
	$(VITEST) --project integration

## The simulator over many seeds: make sim SEEDS=10000; replay one: npm run sim -- --seed N --trace
## Prints how often every event, timer, command, fault and behaviour kind happened, and fails on a
## violation or when one of them never did.
SEEDS ?= 10000
sim: $(NODE_MODULES)
	npm run --silent sim -- --seeds $(SEEDS)

## Benchmarks (not part of make test): writes BENCHMARKS.md and bench/results.json
bench: build
	npm run --silent bench

lint: $(NODE_MODULES)
	npx --no-install tsc --noEmit -p tsconfig.json
	npx --no-install eslint .

## Runs Monoceros on the example config (Ctrl-C stops it).
run: build
	./dist/monoceros -c examples/config.yaml

clean:
	rm -rf dist $(RESULTS)
