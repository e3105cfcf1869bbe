#!/usr/bin/env bash
# The offline wheel folder for a field unit: this project's wheel and every wheel `.[edge]` needs, for
# `install-unit.sh --wheels DIR` on a unit without network (systemd/README.md).
#
#   scripts/build-wheels.sh                      # for this machine's CPU and Python (run it on a Pi like the unit)
#   scripts/build-wheels.sh --arch aarch64       # for 64-bit Pi OS / Debian 12 arm64, from any machine:
#                                                # binary wheels only, CPython 3.11, glibc up to 2.36
set -euo pipefail

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON=python3
ARCH=native
OUT=wheels

die() { printf 'build-wheels: %s\n' "$*" >&2; exit 1; }

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --arch) [ $# -ge 2 ] || die "--arch needs native or aarch64"; ARCH="$2"; shift ;;
            --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT="$2"; shift ;;
            --python) [ $# -ge 2 ] || die "--python needs a path"; PYTHON="$2"; shift ;;
            -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
            *) die "unknown option: $1 (see --help)" ;;
        esac
        shift
    done
    case "$ARCH" in
        native|aarch64) ;;
        armv7l|armhf|armv7) die "PyPI has no armv7l wheels of ai-edge-litert, numpy or pillow: use 64-bit Pi OS (systemd/README.md)" ;;
        *) die "--arch $ARCH: expected native or aarch64" ;;
    esac
    "$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip: give a venv's python with --python (e.g. .venv/bin/python)"
    mkdir -p "$OUT"
    OUT="$(cd "$OUT" && pwd)"
}

# pip builds in the source folder: build from a copy so the checkout stays clean
project_wheel() {
    local stage
    stage="$(mktemp -d)"
    cp -r "$CHECKOUT"/{pyproject.toml,README.md,constraints.txt,edge,converter,basestation} "$stage"/
    rm -f "$OUT"/naturevision-*.whl
    "$PYTHON" -m pip wheel -q --no-deps -w "$OUT" "$stage"
    rm -rf "$stage"
}

dependencies() {
    local pip=("$PYTHON" -m pip --disable-pip-version-check)
    if [ "$ARCH" = native ]; then
        "${pip[@]}" wheel -q -w "$OUT" -c "$CHECKOUT/constraints.txt" --find-links "$OUT" "naturevision[edge]"
        return
    fi
    # Every tag glibc 2.36 accepts: pip does not widen a given --platform by itself (LiteRT 2.x is manylinux_2_27).
    local platforms=(--platform linux_aarch64 --platform manylinux2014_aarch64) n
    for n in $(seq 17 36); do platforms+=(--platform "manylinux_2_${n}_aarch64"); done
    "${pip[@]}" download -q --only-binary=:all: --python-version 3.11 --implementation cp "${platforms[@]}" \
        -d "$OUT" -c "$CHECKOUT/constraints.txt" --find-links "$OUT" "naturevision[edge]"
}

main() {
    parse_args "$@"
    project_wheel
    dependencies
    echo "== $OUT ($ARCH):"
    (cd "$OUT" && ls -1 ./*.whl | sed 's|^\./|   |')
    echo "== on the unit: sudo scripts/install-unit.sh --wheels $(basename "$OUT")"
}

main "$@"
