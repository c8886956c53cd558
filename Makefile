# make demo: set up .venv and run the main job on bundled data.
# make test: set up .venv and run the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench setup clean browser engines

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# peers of the sequential tests, without their pins: gbstats pins numpy<2 (it runs on numpy 2), and
	@# spotify-confidence pulls chartify/bokeh for plots (the tests load only its bound solver)
	$(BIN)/python -m pip install --quiet --no-deps 'gbstats==0.8.0' 'spotify-confidence==4.1.0'
	touch $(STAMP)

demo: $(STAMP) engines
	@# exit 1 means "estimated, but a check failed": the demo shows that honestly
	$(BIN)/causalcli estimate specs/lalonde_psm.yaml --format table || [ $$? -eq 1 ]

# --dist loadgroup: the Spark tests (xdist_group "spark") share one worker, so the suite starts one JVM
test: $(STAMP) browser engines
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadgroup

# The report test opens the HTML in headless Chromium (Debian's package). If it cannot
# be installed here, the test fails and says so; it is never skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the report test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  || echo "chromium could not be installed: the report test will fail"; }

# Spark needs a Java runtime; the PostgreSQL tests start their own server from Debian's binaries
# (kept in /usr/lib/postgresql/<major>/bin, off PATH). If they cannot be installed here, the engine
# tests fail and say so; they are never skipped.
engines:
	@missing=""; \
	command -v java >/dev/null 2>&1 || missing="openjdk-17-jre-headless"; \
	{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } \
	  || missing="$${missing:+$$missing }postgresql"; \
	[ -z "$$missing" ] || { \
	  echo "installing Debian's $$missing for the Spark and PostgreSQL tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null 2>&1 \
	  || echo "$$missing could not be installed: the Spark/PostgreSQL tests will fail"; }

# The slow tests and the benchmarks also compare with peers too heavy for make test's set-up (PyMC).
SLOW_STAMP := $(VENV)/.installed-slow
$(SLOW_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,slow]'
	touch $(SLOW_STAMP)

test-slow: $(SLOW_STAMP) engines
	$(BIN)/python -m pytest -q -m slow

bench: $(SLOW_STAMP) engines
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
