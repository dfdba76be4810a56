# Two commands set everything up from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test docs venv clean runtimes-setup runtimes-cpp

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned in pyproject.toml; on these machines 2.13.0 is a local CPU wheel.
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

# The docs site's tools (pyproject.toml's docs extra), separate so `make demo` does not need them.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

venv: $(STAMP)

# Drivers outside Python (runtimes/, tests/test_runtime_*.py). One shared target: each driver appends
# its own lines. Node/browser: npm packages (bundled CPU binaries, no other download) and Debian's chromium.
NODE_STAMP := runtimes/node/node_modules/.installed

$(NODE_STAMP): runtimes/node/package.json runtimes/node/package-lock.json
	cd runtimes/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci --include=dev --no-audit --no-fund
	touch $(NODE_STAMP)

runtimes-setup: $(NODE_STAMP)
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	# C++ (runtimes/cpp): compiler, CMake, nlohmann/json, valijson and OpenSSL headers from Debian.
	(command -v cmake && command -v g++ && test -f /usr/include/nlohmann/json.hpp -a -f /usr/include/openssl/evp.h \
	  -a -f /usr/include/valijson/validator.hpp) >/dev/null \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ nlohmann-json3-dev libvalijson-dev libssl-dev)

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

test: $(STAMP) runtimes-setup docs
	$(PY) -m pytest -q

demo: $(STAMP)
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) artifacts .pytest_cache $(CPP_BUILD) site
