#!/usr/bin/env bash
# Idempotent: gives PlatformIO (in .venv) the one core package it needs offline, tool-scons, built from
# PyPI's `scons` wheel (the version pinned in requirements.txt), so `pio run -d mcu -e qemu_*` works without
# the PlatformIO registry. Writes $PLATFORMIO_CORE_DIR/packages/tool-scons (default ~/.platformio):
# package.json and .piopm (the version PlatformIO 6.1 asks for, ~4.40801.0), scons.py (puts the unpacked
# wheel on sys.path and runs SCons), scons-local/ (the wheel's SCons package). Present and complete: left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

core_dir=${PLATFORMIO_CORE_DIR:-$HOME/.platformio}
dest=$core_dir/packages/tool-scons
label=4.40801.0  # what platformio/dependencies.py requires ("~4.40801.0"); the SCons inside is the pinned one
scons_version=$(sed -n 's/^scons==\([0-9.]*\).*/\1/p' requirements.txt)
stamp="$label scons==$scons_version"

if [ -f "$dest/scons.py" ] && [ -d "$dest/scons-local/SCons" ] && [ "$(cat "$dest/.sqz-stamp" 2>/dev/null)" = "$stamp" ]; then
  say "PlatformIO tool-scons present ($dest, SCons $scons_version)"
  exit 0
fi

say "creating PlatformIO's tool-scons package in $dest from PyPI's scons==$scons_version"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "scons==$scons_version" 2>/dev/null; then
  .venv/bin/python - "$tmp" <<'PY'
import pathlib, sys, zipfile
tmp = pathlib.Path(sys.argv[1])
wheel = next(tmp.glob("*.whl"))
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if m.startswith("SCons/")]
    archive.extractall(tmp / "scons-local", members)
PY
else
  say "PyPI not reachable: using the scons package installed in .venv"
  site=$(.venv/bin/python -c 'import SCons, os; print(os.path.dirname(os.path.dirname(SCons.__file__)))')
  mkdir -p "$tmp/scons-local" && cp -r "$site/SCons" "$tmp/scons-local/"
fi

rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/scons-local" "$dest/scons-local"
cat > "$dest/package.json" <<JSON
{"name": "tool-scons", "version": "$label", "description": "SCons $scons_version from PyPI, for offline PlatformIO (scripts/setup_platformio.sh)"}
JSON
cat > "$dest/.piopm" <<JSON
{"type": "tool", "name": "tool-scons", "version": "$label", "spec": {"owner": "platformio", "id": null, "name": "tool-scons", "requirements": null, "uri": null}}
JSON
cat > "$dest/scons.py" <<'PY'
# Entry point PlatformIO runs: SCons from the unpacked PyPI wheel beside this file.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scons-local"))
from SCons.Script.Main import main  # noqa: E402

if __name__ == "__main__":
    main()
PY
echo "$stamp" > "$dest/.sqz-stamp"
say "tool-scons ready"
