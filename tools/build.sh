#!/usr/bin/env bash
# Configures (once) and builds ilb. Usage: tools/build.sh [BUILD_DIR] (default: ILB_BUILD_DIR or
# <repo>/build), buildtype debugoptimized; extra `meson setup` options in ILB_MESON_ARGS.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-${ILB_BUILD_DIR:-$repo/build}}"

if [[ ! -f "$build/build.ninja" ]]; then
  # shellcheck disable=SC2086 # ILB_MESON_ARGS is a list of options
  meson setup --buildtype debugoptimized ${ILB_MESON_ARGS:-} "$build" "$repo"
fi
ninja -C "$build" -j "$(nproc)"
