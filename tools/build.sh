#!/usr/bin/env bash
# Configures (once) and builds ilb. Usage: tools/build.sh [BUILD_DIR] (default: ILB_BUILD_DIR or
# <repo>/build), buildtype debugoptimized.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-${ILB_BUILD_DIR:-$repo/build}}"

if [[ ! -f "$build/build.ninja" ]]; then
  meson setup --buildtype debugoptimized "$build" "$repo"
fi
ninja -C "$build" -j "$(nproc)"
