# One-command entry points for a fresh machine (see README "Quick start").
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: venv test lint demo ffmpeg

venv: $(VENV)/.installed

# torch==2.13.0 goes first, explicitly: an unpinned torch would pull a multi-GB CUDA build.
# pyclarity goes last with --no-deps: its declared dependencies pull torchaudio, which does not load
# beside the CPU torch; the parts we use need only what the `cadenza` extra installs.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[all]'
	$(PY) -m pip install --no-deps pyclarity==0.9.0
	touch $@

# musdb/museval decode audio with ffmpeg: installed with apt as root, else a message (their tests then skip).
ffmpeg:
	.ci/ffmpeg.sh

test: venv ffmpeg
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .

# The main job on the embedded demo data: separate, NAL-R per listener, remix, HAAQI (see README).
demo: venv
	PYTHON=$(abspath $(PY)) recipes/cadenza/run_demo.sh
