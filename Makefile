# Two commands for a fresh machine:  make demo   and   make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
DEMO_OUT := demo-out

.PHONY: demo test bench clean arm64-check wheels

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)

# The edge runtime alone: numpy, pillow, LiteRT.
$(VENV)/.edge: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -c constraints.txt -e ".[edge]"
	touch $@

# The base station's part (nv-base) for the demo's whole path comes with the `base` extra; `nv-edge scan`
# of the demo's GeoTIFF with the `survey` extra.
$(VENV)/.base: pyproject.toml constraints.txt $(VENV)/.edge
	$(PIP) install -c constraints.txt -e ".[edge,base,survey]"
	touch $@

# Everything the tests exercise: both interpreters, TensorFlow (to build test models), PyAV (to write and
# read test videos), pytest.
$(VENV)/.test: pyproject.toml constraints.txt $(VENV)/.edge
	$(PIP) install -c constraints.txt -e ".[edge,edge-legacy,converter,base,survey,video,dev]"
	touch $@

demo: $(VENV)/.base
	@mkdir -p $(DEMO_OUT)
	@echo "== nv-edge classify on the shipped sample frames with the shipped image model (offline); they are Sentinel-2 at 10 m/px, which the PNGs do not say: --gsd 10 =="
	$(VENV)/bin/nv-edge classify samples/tiles samples/scenes --gsd 10 --format table --device demo
	@echo "== the shipped sample clips with the shipped audio model: events (rain | chainsaw | rain in the composite) =="
	$(VENV)/bin/nv-edge classify samples/audio --events --format table --device demo
	@$(PY) -c 'import sys; from edge.model.bundle import read_bundle; op = read_bundle(sys.argv[1]).manifest.metrics.get("operating_point"); print("audio thresholds:", op["how"] if op else "per alert label, for window precision (the manifest records no operating point)")' models/mining-audio/mining-audio.nvm
	$(VENV)/bin/nv-edge classify samples/ --gsd 10 --device demo > $(DEMO_OUT)/detections.jsonl
	@echo "== JSON records (every frame and audio window) written to $(DEMO_OUT)/detections.jsonl =="
	@echo "== the mosaic's tile map against its truth (tiles without overlap) =="
	$(VENV)/bin/nv-edge classify samples/scenes/mosaic_a.png --gsd 10 --overlap 0 --device demo | $(PY) samples/compare_truth.py samples/scenes/mosaic_a.json
	@echo "== nv-edge scan: the mosaic as a GeoTIFF (10 m/px, placed in the Tapajos basin: not a real place) -> mining areas as GeoJSON =="
	$(VENV)/bin/nv-edge scan samples/scenes/mosaic_a.tif --out $(DEMO_OUT)/mosaic_a.mining.geojson --device demo --fresh > $(DEMO_OUT)/mosaic_a.areas.jsonl
	@echo "== open $(DEMO_OUT)/mosaic_a.mining.geojson in QGIS; the overview is $(DEMO_OUT)/mosaic_a.mining.png, one record per area in $(DEMO_OUT)/mosaic_a.areas.jsonl =="
	@echo "== the whole path: mosquitto + nv-edge run + nv-base listen/list (all stopped at the end) =="
	@command -v mosquitto >/dev/null || (apt-get update -qq && apt-get install -y -qq mosquitto)
	$(VENV)/bin/python samples/demo_service.py $(DEMO_OUT)

# The delivery tests start their own mosquitto on a free loopback port with their own config, so a
# broker service that the Debian package may have started (on 1883) is never used. Likewise the
# base-station tests start their own PostgreSQL (tests/pgserver.py), with PostGIS where it is packaged.
# The browser tests drive Debian's Chromium through its chromedriver (no browser download).
test: $(VENV)/.test
	(command -v mosquitto && command -v openssl) >/dev/null || (apt-get update -qq && apt-get install -y -qq mosquitto mosquitto-clients openssl)
	(test -x /usr/bin/chromium && test -x /usr/bin/chromedriver) || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	(ls /usr/lib/postgresql/*/bin/initdb && ls /usr/share/postgresql/*/extension/postgis.control) >/dev/null 2>&1 || \
	    (apt-get update -qq && apt-get install -y -qq postgresql && \
	     (apt-get install -y -qq postgresql-postgis || echo "PostGIS is not packaged here: the PostgreSQL tests run without it"))
	$(PY) -m pytest -q

bench: $(VENV)/.test
	$(PY) bench/image_pipeline.py
	$(PY) bench/outbox_drain.py

# Not part of `make test`: the edge extra installed and run on a Debian 12 arm64 root under qemu-user,
# compared with this machine (scripts/arm64_check.py). Needs root; the root is cached in .cache/arm64-root
# (ARM64_CHECK_ARGS=--rebuild makes a new one; --help lists the rest).
$(VENV)/.arm64-host: pyproject.toml constraints.txt $(VENV)/.edge
	$(PIP) install -c constraints.txt -e ".[edge,edge-legacy,base]"
	touch $@

arm64-check: $(VENV)/.arm64-host
	$(PY) scripts/arm64_check.py $(ARM64_CHECK_ARGS)

# The offline wheel folder for install-unit.sh --wheels: `make wheels` for this machine's CPU,
# `make wheels ARCH=aarch64` for a 64-bit Pi from any machine.
wheels: | $(PY)
	scripts/build-wheels.sh --python $(PY) --arch $(or $(ARCH),native) --out wheels

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
