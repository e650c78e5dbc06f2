#!/usr/bin/env bash
# Install as a user would from PyPI and run the product from a folder outside the checkout:
#   1. `python -m build`: the sdist and the wheel (the wheel must hold the demo weights);
#   2. a fresh venv: torch==2.13.0 first, the wheel with the `cadenza` extra, pyclarity 0.9.0 --no-deps;
#   3. in an empty temporary folder: `python -m xumx_slicq_v2 --model demo` on a generated song, then
#      `cadenza.enhance` and `cadenza.evaluate` on the demo data (generated there) for one song-listener pair;
#   4. checks that the outputs are where they belong (the working directory) and that nothing was written into
#      the installed package.
# PYTHON: the interpreter that builds (needs the `build` package: the dev extra); the venv is made with it too.
# BUILD_ARGS: extra `python -m build` arguments (e.g. --no-isolation on a machine without a package index).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xumx_wheel_smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS"; }

step "build the sdist and the wheel"
# shellcheck disable=SC2086
"$PYTHON" -m build --outdir "$WORK/dist" ${BUILD_ARGS:-} . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
ls -l "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/*.whl)
ls "$WORK"/dist/*.tar.gz >/dev/null
"$PYTHON" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = [f"xumx_slicq_v2/pretrained/demo/{name}" for name in ("xumx_slicq_v2.pth", "xumx_slicq_v2.json")]
needed += ["cadenza/config.yaml", "cadenza/config_test.yaml", "cadenza/cad1_task1.yaml"]
missing = [name for name in needed if name not in names]
if missing:
    sys.exit(f"the wheel lacks {missing}")
print(f"wheel: {len(names)} files, demo weights and recipe configs included")
EOF

step "fresh venv: torch==2.13.0, the wheel with [cadenza], pyclarity --no-deps"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q torch==2.13.0
"$VPY" -m pip install -q "$WHEEL[cadenza]"
"$VPY" -m pip install -q --no-deps pyclarity==0.9.0
SITE=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
touch "$WORK/installed.stamp"

mkdir "$WORK/run"
cd "$WORK/run"
unset PYTHONPATH XUMX_DEMO_DATA  # the installed package, and the default demo data location
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
"$VPY" -c "import xumx_slicq_v2, sys; sys.exit(0 if xumx_slicq_v2.__file__.startswith('$SITE') else 'not the installed package: ' + xumx_slicq_v2.__file__)"

step "separate a generated song with the demo weights"
"$VPY" - <<'EOF'
import numpy as np
import soundfile as sf

rate = 44100
t = np.arange(4 * rate) / rate
notes = [np.sin(2 * np.pi * f * t) * np.exp(-((t % 1.0) * 3)) for f in (110.0, 220.0, 440.0, 659.3)]
song = 0.2 * np.stack([sum(notes), sum(notes[::-1])], axis=1) + 0.01 * np.random.default_rng(0).standard_normal((t.size, 2))
sf.write("song.wav", song.astype(np.float32), rate)
EOF
"$VPY" -m xumx_slicq_v2 song.wav --model demo --output-dir separated
for stem in bass vocals other drums; do test -s "separated/song/$stem.wav"; done

step "the recipe on the demo data: one song-listener pair"
"$VPY" -m data_prep.demo >demo_root.txt
test "$(cat demo_root.txt)" = "$PWD/data/demo/cad1/task1"
mapfile -t PAIR < <("$VPY" - <<'EOF'
import json
root = open("demo_root.txt").read().strip()
song = json.load(open(f"{root}/metadata/musdb18.valid.json"))[0]["Track Name"]
listener = next(iter(json.load(open(f"{root}/metadata/listeners.valid.json"))))
print(f"evaluate.songs=[{json.dumps(song)}]")
print(f"evaluate.listeners=[{json.dumps(listener)}]")
EOF
)
echo "pair: ${PAIR[*]}"
"$VPY" -m cadenza.enhance "${PAIR[@]}"
"$VPY" -m cadenza.evaluate "${PAIR[@]}"
EXP=exp/cad1_task1/xumx_slicq_v2_demo
test -s "$EXP/scores.csv" && test -s "$EXP/report.json" && test -s "$EXP/report.png"
test "$(find "$EXP/enhanced_signals" -name '*.flac' | wc -l)" -eq 9
cat "$EXP/scores.csv"

step "nothing written into the installed package"
# Bytecode and numba's compiled-kernel cache (*.nbi/*.nbc, the HAAQI kernels) live in __pycache__ like any .pyc.
written=$(find "$SITE/xumx_slicq_v2" "$SITE/cadenza" "$SITE/data_prep" -newer "$WORK/installed.stamp" -type f \
  ! -path '*/__pycache__/*' -print)
if [ -n "$written" ]; then
  echo "written into the installed package:" >&2
  echo "$written" >&2
  exit 1
fi
echo "wheel smoke test passed (${SECONDS}s)"
