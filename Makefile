# Two commands for users: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED := $(abspath ../shared)
YAMNET_SHARED := $(SHARED)/pretrained/yamnet/yamnet.tflite

# Point the product at the team's copy of the official weights when it is there (never required).
ifneq ($(wildcard $(YAMNET_SHARED)),)
export LEAN_KD_YAMNET ?= $(YAMNET_SHARED)
endif
ifneq ($(wildcard $(SHARED)/datasets),)
export LEAN_KD_SHARED_DATA ?= $(SHARED)/datasets
endif

.PHONY: demo test test-seeds install clean bench-arm64

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# MediaPipe cannot share .venv with tfmot (absl-py pins): its compatibility test uses its own venv.
MEDIAPIPE_STAMP := .venv-mediapipe/.installed
$(MEDIAPIPE_STAMP): tests/export/mediapipe_env.py
	$(PYTHON) tests/export/mediapipe_env.py setup
	touch $(MEDIAPIPE_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lean-kd demo --out runs/demo

# lint-imports: the one-way import contract (pyproject.toml [tool.importlinter]); ruff: lint and
# formatting (pyproject.toml [tool.ruff]). Any of them failing fails `make test`.
test: $(STAMP) $(MEDIAPIPE_STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q --timeout=900 $(PYTEST_ARGS)

# The stand-in for "another CPU": every test that trains reruns with its seeds shifted by 0, 1
# and 2 (LEAN_KD_TEST_SEED); a threshold that holds for one seed only fails here. Not run by CI.
SEED_OFFSETS ?= 0 1 2
test-seeds: $(STAMP) $(MEDIAPIPE_STAMP)
	@set -e; for offset in $(SEED_OFFSETS); do \
	  echo "== LEAN_KD_TEST_SEED=$$offset"; \
	  LEAN_KD_TEST_SEED=$$offset $(BIN)/python -m pytest -q --timeout=900 -m trains -p no:randomly $(PYTEST_ARGS); \
	done

# Opt-in: the Raspberry Pi runner under qemu arm64 user-mode emulation (needs apt; ~5 min).
bench-arm64: $(STAMP)
	bash export/raspberry_pi/arm64_check.sh

clean:
	rm -rf $(VENV) .venv-mediapipe runs build *.egg-info
