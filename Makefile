# Two commands set everything up from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Set-up steps print one line each; their full output (pip, npm, apt) is appended to this file.
SETUP_LOG := .setup.log
QUIETLY := scripts/quietly.sh $(SETUP_LOG)

.PHONY: demo test docs lint venv clean runtimes-setup runtimes-cpp setup-node setup-browser setup-cpp

# torch is pinned in pyproject.toml; on these machines 2.13.0 is a local CPU wheel.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(QUIETLY) "create $(VENV)" $(PYTHON) -m venv $(VENV)
	@$(QUIETLY) "upgrade pip in $(VENV)" $(PY) -m pip install --upgrade pip
	@$(QUIETLY) "install the package with its dev, serve and ray extras into $(VENV)" $(PY) -m pip install -e '.[dev,serve,ray]'
	@touch $(STAMP)

# The docs site's tools (pyproject.toml's docs extra), separate so `make demo` does not need them.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP) pyproject.toml
	@$(QUIETLY) "install the docs extra (mkdocs) into $(VENV)" $(PY) -m pip install -e '.[docs]'
	@touch $(DOCS_STAMP)

venv: $(STAMP)

# Drivers outside Python (runtimes/, tests/test_runtime_*.py): one target per driver, all three for
# `make test`. Node/browser: npm packages (bundled CPU binaries, no other download); the browser also
# Debian's chromium; C++: the Debian packages below. Only missing packages are installed (root needed then).
NODE_STAMP := runtimes/node/node_modules/.installed
BROWSER_PACKAGES := chromium
# C++ (runtimes/cpp): compiler, CMake, nlohmann/json, valijson, OpenSSL and ICU (NFC normalization) headers.
CPP_PACKAGES := cmake g++ nlohmann-json3-dev libvalijson-dev libssl-dev libicu-dev

$(NODE_STAMP): runtimes/node/package.json runtimes/node/package-lock.json
	@$(QUIETLY) "Node.js driver: npm ci in runtimes/node" \
	  sh -c 'cd runtimes/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci --include=dev --no-audit --no-fund'
	@touch $(NODE_STAMP)

setup-node: $(NODE_STAMP)

setup-browser: $(NODE_STAMP)
	@scripts/setup-apt.sh $(SETUP_LOG) "browser driver" $(BROWSER_PACKAGES)

setup-cpp:
	@scripts/setup-apt.sh $(SETUP_LOG) "C++ driver" $(CPP_PACKAGES)

runtimes-setup: setup-node setup-browser setup-cpp

# C++ driver: libtorch from the venv's torch wheel, Release build in runtimes/cpp/build (git-ignored);
# incremental after the first build. tests/test_runtime_cpp.py runs it.
CPP_BUILD := runtimes/cpp/build

$(CPP_BUILD)/CMakeCache.txt:
	cmake -S runtimes/cpp -B $(CPP_BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"

runtimes-cpp: $(CPP_BUILD)/CMakeCache.txt
	cmake --build $(CPP_BUILD) -j2

# The docs site (mkdocs.yml, docs/) into site/; --strict fails on any warning (broken link or anchor,
# an API object that no longer exists). PYTHONPATH: mkdocstrings reads this checkout's package.
docs: $(DOCS_STAMP)
	PYTHONPATH=$(CURDIR) NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Static checks: ruff (lint, and the format check) and mypy, configured in pyproject.toml.
LINTED := seq2seq_export tests benchmarks scripts docs/hooks.py

lint: $(STAMP)
	$(VENV)/bin/ruff check --quiet $(LINTED)
	$(VENV)/bin/ruff format --check --quiet $(LINTED)
	$(VENV)/bin/mypy

# The suite runs on two processes (pytest-xdist), a test file per process at a time (--dist loadfile:
# module fixtures are built once, and the C++ driver's tests share one process). The C++ driver is
# built first, so no two test processes build it at once.
test: $(STAMP) runtimes-setup docs lint
	@$(QUIETLY) "build the C++ driver (runtimes/cpp/build)" $(MAKE) --no-print-directory runtimes-cpp
	$(PY) -m pytest -q -n 2 --dist loadfile

demo: $(STAMP)
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) artifacts .pytest_cache $(CPP_BUILD) site $(SETUP_LOG)
