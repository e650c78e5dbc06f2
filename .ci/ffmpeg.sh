#!/usr/bin/env bash
# Make sure the ffmpeg and ffprobe executables exist: musdb/museval (the `musdb` extra) decode audio through
# them. Installed with apt when running as root; otherwise a message says how, and the tests that need them
# are skipped with that reason (nothing else needs ffmpeg).
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ffmpeg: installing it with apt-get (needed by musdb/museval)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get install -y --no-install-recommends ffmpeg >/dev/null 2>&1 \
    || { apt-get update && apt-get install -y --no-install-recommends ffmpeg; }; }; then
    echo "ffmpeg: apt-get could not install it (see above); the musdb/museval tests are skipped without it" >&2
  elif ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    echo "ffmpeg: installed, but ffmpeg/ffprobe are not on PATH ($PATH); the musdb/museval tests are skipped" >&2
  fi
else
  echo "ffmpeg: not found, and not root with apt-get to install it; install ffmpeg (e.g. sudo apt-get install" \
    "ffmpeg) to run the musdb/museval tests, which are skipped without it" >&2
fi
