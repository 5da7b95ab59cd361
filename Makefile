# Two commands on a fresh machine: `make demo` and `make test` (both start with `make install`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared
HARNESS := $(SHARED)/tools/tiles-harness
PORT   ?= 8000
CIM_DATA ?= city-data
export CIM_DATA

.PHONY: install test test-deps demo serve bench bench-deps bench-ifc bench-las clean lint

## install: .venv with the `cim` command and the viewer's CesiumJS (npm registry)
install: $(VENV)/.installed server/static/vendor/cesium/Cesium.js

$(VENV)/.installed: pyproject.toml setup.py converters/citygml/gml_scan.pyx converters/citygml/tess_kernel.pyx
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

server/static/vendor/cesium/Cesium.js: server/viewer/package.json server/viewer/package-lock.json
	bash server/viewer/install-cesium.sh

## test-deps: Chromium (Debian package, needs root) and the 3D Tiles judges in ../shared
test-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null; \
	  else echo "Chromium is missing: sudo apt-get install chromium fonts-liberation" >&2; exit 1; fi; fi
	@if [ -x $(HARNESS)/setup ]; then $(HARNESS)/setup; else echo "note: $(HARNESS) not found; tests that need it will fail" >&2; fi

## test: install everything and run the whole suite
test: install test-deps
	$(BIN)/python -m pytest -q

## demo: generate the Da Nang High-Tech Park district, import, tile and serve on http://127.0.0.1:$(PORT)/
demo: install
	$(BIN)/cim --data $(CIM_DATA) demo --port $(PORT)

serve: install
	$(BIN)/cim --data $(CIM_DATA) serve --port $(PORT)

## bench: CityGML import vs raw lxml iterparse (figures go to docs/benchmarks.md by hand)
bench: install
	$(BIN)/python benchmarks/bench_citygml_import.py

## bench-deps: the peer tools benchmarks compare against (py3dtiles with its IFC and LAS extras) in their own venv
bench-deps: .venv-peers/.installed

.venv-peers/.installed:
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/pip install --quiet 'py3dtiles[las,ifc]' 'laspy[lazrs]'  # lazrs: py3dtiles reads LAZ only with a laspy backend
	touch $@

## bench-las: LiDAR, py3dtiles vs ours on a generated 10 M-point LAS and LAZ (docs/benchmarks.md)
bench-las: install bench-deps
	$(BIN)/python benchmarks/bench_las.py

## bench-ifc: cim convert vs py3dtiles convert vs the bare ifcopenshell iterator on ../shared/data/ifc
bench-ifc: install bench-deps
	$(BIN)/python benchmarks/bench_ifc.py

clean:
	rm -rf $(VENV) .venv-peers server/static/vendor server/viewer/node_modules .pytest_cache build converters/citygml/gml_scan.c converters/citygml/gml_scan.*.so converters/citygml/tess_kernel.c converters/citygml/tess_kernel.*.so
