#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the kenlm source distribution on PyPI (it ships
# lm/builder) and cache them in the venv's bin/. `make demo`, `make test` and CI call this; it
# does nothing when both binaries are already there.
#
#   scripts/build_kenlm.sh [VENV]        (default .venv)
#
# A user with their own KenLM points curate at it with CURATE_KENLM_BIN=/path/to/kenlm/bin.
set -euo pipefail
VENV=${1:-.venv}
BIN="$VENV/bin"
VERSION=${KENLM_VERSION:-0.3.0}
if [ -x "$BIN/lmplz" ] && [ -x "$BIN/build_binary" ]; then
  exit 0
fi

need_pkgs=()
for p in cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build_kenlm: installing ${need_pkgs[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "build_kenlm: missing packages: ${need_pkgs[*]} (install them, e.g. apt-get install ...)" >&2
    exit 1
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The sdist, not a wheel: wheels carry only the query module, the sdist has lm/builder.
"$BIN/python" -m pip download -q --no-deps --no-binary kenlm --no-build-isolation "kenlm==$VERSION" -d "$work" 2>/dev/null \
  || "$BIN/python" -m pip download -q --no-deps --no-binary kenlm "kenlm==$VERSION" -d "$work"
tar xzf "$work"/kenlm-*.tar.gz -C "$work"
src=$(echo "$work"/kenlm-*/)
mkdir -p "$work/build"
echo "build_kenlm: building lmplz and build_binary (a few minutes)" >&2
log="$work/build.log"
if ! { cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
       && cmake --build "$work/build" --target lmplz build_binary -j "$(nproc)"; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "build_kenlm: the build failed (the log's end is above)" >&2
  exit 1
fi
cp "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$BIN/"
echo "build_kenlm: installed $BIN/lmplz and $BIN/build_binary" >&2
