#!/usr/bin/env bash
# Idempotent set-up for a fresh machine (Debian/Ubuntu, Python 3.11): what is missing is installed,
# what is there is left alone, and each step says what it does.
#   1. Debian packages for the firmware stages (cross compiler, newlib, QEMU; ser2net for the RFC 2217 tests), when missing.
#   2. A virtual environment in .venv with the pinned requirements.txt, when missing or out of date.
#   2b. labgrid 26 in .venv/labgrid from the pinned requirements-labgrid.txt (the labgrid farm tests, bench.on_device.run --place).
#   3. PlatformIO's core tool-scons package, from PyPI's scons, for offline firmware builds (scripts/setup_platformio.sh).
#   4. The TFLM source trees the firmware builds from, made from pinned archives (python -m convert.tflm_tree):
#      $SQZ_TFLM_SOURCES (default ../shared/tflm-sources), else GitHub on a connected machine. Without them the
#      main job uses the virtual device and says why; with CI=true a missing tree stops the set-up.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

DEBIAN_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm ser2net clang libclang-rt-14-dev)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
else
  say "not a Debian system: install ${DEBIAN_PACKAGES[*]} (or your system's equivalents) yourself"
fi
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages present: ${DEBIAN_PACKAGES[*]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment .venv with $($PYTHON --version)"
  $PYTHON -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "installing the pinned Python packages of requirements.txt into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$wanted" > "$stamp"
else
  say "Python packages up to date (.venv matches requirements.txt)"
fi
# labgrid (coordinator, exporter, the client API bench.on_device.run --place uses) in its own environment: its
# pyserial-labgrid and PlatformIO's pyserial install the same `serial` package (requirements-labgrid.txt says why).
labgrid_stamp=.venv/labgrid/.requirements.sha256
labgrid_wanted=$(sha256sum requirements-labgrid.txt | cut -d' ' -f1)
if [ "$(cat "$labgrid_stamp" 2>/dev/null)" != "$labgrid_wanted" ]; then
  say "installing labgrid (requirements-labgrid.txt) into .venv/labgrid"
  [ -x .venv/labgrid/bin/python ] || $PYTHON -m venv .venv/labgrid
  .venv/labgrid/bin/python -m pip install -q -r requirements-labgrid.txt
  echo "$labgrid_wanted" > "$labgrid_stamp"
else
  say "labgrid up to date (.venv/labgrid matches requirements-labgrid.txt)"
fi
bash scripts/setup_platformio.sh
if ! .venv/bin/python -m convert.tflm_tree; then
  say "no TFLM trees: the firmware cannot be built until the archives above are provided (see the error)"
  [ "${CI:-}" != "true" ] || exit 1
fi
say "done"
