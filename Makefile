# make demo: set up .venv and run the main job on bundled data.
# make test: set up .venv and run the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench setup clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	@# exit 1 means "estimated, but a check failed": the demo shows that honestly
	$(BIN)/causalcli estimate specs/lalonde_psm.yaml --format table || [ $$? -eq 1 ]

test: $(STAMP) browser
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow" -n 2

# The report test opens the HTML in headless Chromium (Debian's package). If it cannot
# be installed here, the test fails and says so; it is never skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the report test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  || echo "chromium could not be installed: the report test will fail"; }

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
