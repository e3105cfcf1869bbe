#!/usr/bin/env bash
# Install, update or remove a NatureVision field unit: one command, run as root on the unit from a copy
# of this checkout (systemd/README.md). Running it again gives the same state; it keeps an existing config.
#
#   sudo scripts/install-unit.sh                    # from PyPI (the unit has a network now)
#   sudo scripts/install-unit.sh --wheels wheels/   # offline, from a wheel folder (scripts/build-wheels.sh)
#   sudo scripts/install-unit.sh --uninstall        # remove the software and the unit, keep config and data
#   sudo scripts/install-unit.sh --uninstall --purge  # ... and the config, the data and the user too
#
# A script rather than a .deb: the software is a venv of PyPI wheels (LiteRT, numpy) that Debian does not
# package, so a .deb would either bundle a venv built for one CPU and Python or run pip in its postinst,
# which dpkg cannot track or roll back. The script uses the same pieces a package would (sysusers.d,
# tmpfiles.d, a unit in /etc/systemd/system), so a .deb can wrap it later.
set -euo pipefail

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICE=naturevision-edge.service
USER_NAME=naturevision
PYTHON=python3
ROOT=/
WHEELS=""
NO_DEPS=0
ACTION=install
PURGE=0

usage() {
    cat <<'EOF'
Usage: install-unit.sh [--wheels DIR] [--no-deps] [--root DIR] [--python PATH]
       install-unit.sh --uninstall [--purge] [--root DIR]

  --wheels DIR   install from a folder of wheels, without network (scripts/build-wheels.sh makes one)
  --no-deps      install only the naturevision package; its dependencies must be there already
  --root DIR     install into DIR instead of / (a scratch root for tests and staging); the venv is made
                 by --python of this machine, nothing is enabled or started, no apt-get runs.
                 For a bootable image, run this script inside the image's root with chroot instead.
  --python PATH  the Python 3.11+ that makes the venv (default: python3, the OS's own)
  --uninstall    stop and remove the service, the venv and the models; keep /etc/naturevision,
                 /var/lib/naturevision (the outbox), /srv/naturevision (watched folders) and the user
  --purge        with --uninstall: remove those as well
EOF
}

say() { printf '== %s\n' "$*"; }
die() { printf 'install-unit: %s\n' "$*" >&2; exit 1; }

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --wheels) [ $# -ge 2 ] || die "--wheels needs a folder"; WHEELS="$(cd "$2" && pwd)" || die "--wheels $2: no such folder"; shift ;;
            --no-deps) NO_DEPS=1 ;;
            --root) [ $# -ge 2 ] || die "--root needs a folder"; ROOT="$2"; shift ;;
            --python) [ $# -ge 2 ] || die "--python needs a path"; PYTHON="$2"; shift ;;
            --uninstall) ACTION=uninstall ;;
            --purge) PURGE=1 ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done
    [ "$PURGE" = 0 ] || [ "$ACTION" = uninstall ] || die "--purge goes with --uninstall"
    [ -d "$ROOT" ] || die "--root $ROOT: no such folder"
    if [ -n "$WHEELS" ] && ! compgen -G "$WHEELS/naturevision-*.whl" >/dev/null; then
        die "--wheels $WHEELS: no naturevision-*.whl there; make one with scripts/build-wheels.sh"
    fi
    ROOT="$(cd "$ROOT" && pwd)"
    R="${ROOT%/}"   # prefix for every path below: "" on the unit itself
    VENV="$R/opt/naturevision"
}

in_scratch_root() { [ -n "$R" ]; }
systemd_running() { ! in_scratch_root && [ -d /run/systemd/system ]; }
root_args() { if in_scratch_root; then printf -- '--root=%s\n' "$ROOT"; fi; }

# The numeric id of a user or group in the target's own /etc/passwd or /etc/group (not this machine's).
id_in_root() { awk -F: -v name="$2" '$1 == name { print $3; found = 1 } END { exit !found }' "$R/etc/$1"; }

# Copy a file only when its content differs (a rerun changes nothing), then set owner and mode.
install_file() {
    local source="$1" target="$2" mode="$3" owner="${4:-0}" group="${5:-0}"
    mkdir -p "$(dirname "$target")"
    if ! cmp -s "$source" "$target" 2>/dev/null; then
        cp "$source" "$target.new" && mv "$target.new" "$target"
        CHANGED=1
    fi
    chown "$owner:$group" "$target"
    chmod "$mode" "$target"
}

check_prerequisites() {
    [ "$(id -u)" = 0 ] || die "run as root: sudo $0 $*"
    local tool
    for tool in systemd-sysusers systemd-tmpfiles; do
        command -v "$tool" >/dev/null || die "$tool is missing: apt-get install systemd"
    done
    if [ "$ACTION" = install ]; then
        local nvm
        for nvm in "$CHECKOUT"/models/*/*.nvm; do
            [ -f "$nvm" ] || die "no model bundles in $CHECKOUT/models: run this script from a full copy of the checkout"
            [ "$(head -c 2 "$nvm")" = PK ] || die "$nvm is not a model bundle (a Git LFS pointer? git lfs pull)"
        done
    fi
}

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# python3-venv (ensurepip, which `python3 -m venv` needs) and PortAudio (the microphone) come from the OS,
# once. Not a Debian system: left to the technician.
system_packages() {
    in_scratch_root && return 0
    command -v dpkg-query >/dev/null || return 0
    local missing=() package
    for package in python3-venv libportaudio2; do
        deb_installed "$package" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "install ${missing[*]} with the OS's package manager, then run this again"
    say "apt-get install ${missing[*]}"
    apt-get install -y -q "${missing[@]}" || { apt-get update -q && apt-get install -y -q "${missing[@]}"; } ||
        die "apt-get could not install ${missing[*]}: on an offline unit, copy their .deb files over and dpkg -i them"
}

user_and_folders() {
    install_file "$CHECKOUT/systemd/naturevision.sysusers" "$R/usr/lib/sysusers.d/naturevision.conf" 644
    install_file "$CHECKOUT/systemd/naturevision.tmpfiles" "$R/usr/lib/tmpfiles.d/naturevision.conf" 644
    mkdir -p "$R/etc"
    systemd-sysusers $(root_args) naturevision.conf
    systemd-tmpfiles $(root_args) --create naturevision.conf
    say "user $USER_NAME (uid $(id_in_root passwd $USER_NAME)); /etc/naturevision, /var/lib/naturevision, /srv/naturevision/{incoming,done}"
}

# A fingerprint of what the venv is made from: the package's sources (or the wheels) and the options.
# Unchanged, pip is not run again, so a rerun leaves every file of the venv as it was.
software_stamp() {
    {
        echo "no-deps=$NO_DEPS python=$("$PYTHON" -c 'import sys; print(sys.version)')"
        if [ -n "$WHEELS" ]; then
            (cd "$WHEELS" && sha256sum ./*.whl)
        else
            (cd "$CHECKOUT" && find pyproject.toml README.md constraints.txt edge converter basestation -type f \
                ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
        fi
    } | sha256sum | cut -d' ' -f1
}

pip_install() {
    local pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$CHECKOUT/constraints.txt")
    local project=naturevision
    if [ -n "$WHEELS" ]; then
        pip+=(--no-index --find-links "$WHEELS")
    else
        # pip builds in the source folder: build from a copy, so the checkout may be read-only
        STAGE="$(mktemp -d)"
        trap 'rm -rf "$STAGE"' EXIT
        cp -r "$CHECKOUT"/{pyproject.toml,README.md,constraints.txt,edge,converter,basestation} "$STAGE"/
        project="$STAGE"
    fi
    if [ "$NO_DEPS" = 0 ]; then  # the dependencies, and the package when its version is new
        "${pip[@]}" --upgrade --upgrade-strategy only-if-needed "$project[edge]"
    fi
    # the package itself, always this source's code (a changed checkout may keep its version number)
    "${pip[@]}" --force-reinstall --no-deps "$project"
}

software() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
        die "$PYTHON is not Python 3.11 or newer (Debian 12 / Pi OS 12 have 3.11): give one with --python"
    local stamp
    stamp="$(software_stamp)"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.naturevision-stamp" 2>/dev/null)" = "$stamp" ]; then
        say "software in $VENV: unchanged since the last install"
        return 0
    fi
    [ -x "$VENV/bin/python" ] || { say "python3 -m venv $VENV"; "$PYTHON" -m venv "$VENV"; }
    say "pip install naturevision[edge] into $VENV from ${WHEELS:-PyPI and this checkout}$([ "$NO_DEPS" = 1 ] && echo ' (--no-deps)')"
    pip_install
    if [ "$NO_DEPS" = 1 ]; then
        "$VENV/bin/python" -c 'import edge; print("== installed naturevision", edge.__version__)'
    else
        "$VENV/bin/nv-edge" --version | sed 's/^/== installed /'
    fi
    echo "$stamp" > "$VENV/.naturevision-stamp"
    CHANGED=1
}

models() {
    local folder file
    for folder in "$CHECKOUT"/models/*/; do
        for file in "$folder"*; do
            [ -f "$file" ] && install_file "$file" "$VENV/models/$(basename "$folder")/$(basename "$file")" 644
        done
    done
    say "models in $VENV/models: $(cd "$CHECKOUT/models" && echo */ | tr -d /)"
}

config_and_unit() {
    local gid config="$R/etc/naturevision/edge.toml"
    gid="$(id_in_root group $USER_NAME)"
    install_file "$CHECKOUT/systemd/$SERVICE" "$R/etc/systemd/system/$SERVICE" 644
    if [ -e "$config" ]; then
        say "config $config: kept as it is"
    else
        install_file "$CHECKOUT/systemd/edge.example.toml" "$config" 640 0 "$gid"
        say "config $config: the example; edit it (device.id, the broker, the sources)"
    fi
}

config_ok() {
    setpriv --reuid=$USER_NAME --regid=$USER_NAME --init-groups \
        "$VENV/bin/nv-edge" config check /etc/naturevision/edge.toml
}

enable_service() {
    if ! systemd_running; then
        say "systemd is not running here (a chroot or --root): $SERVICE is installed, not enabled;" \
            "on the unit: systemctl enable --now $SERVICE"
        return 0
    fi
    systemctl daemon-reload
    systemctl enable --quiet "$SERVICE"
    if ! config_ok; then
        say "$SERVICE is enabled but not started: fix the config, check it, then: systemctl start $SERVICE"
    elif [ "$CHANGED" = 1 ]; then
        systemctl restart "$SERVICE" && say "$SERVICE (re)started"
    else
        systemctl start "$SERVICE" && say "$SERVICE is running"
    fi
}

install() {
    CHANGED=0
    system_packages
    user_and_folders
    software
    models
    config_and_unit
    enable_service
    say "done. Next: sudo -u $USER_NAME $VENV/bin/nv-edge config check /etc/naturevision/edge.toml; then nv-edge doctor"
}

uninstall() {
    if systemd_running; then
        systemctl disable --now --quiet "$SERVICE" 2>/dev/null || true
    fi
    find "$R/etc/systemd/system" -name "$SERVICE" -type l -delete 2>/dev/null || true  # enablement links
    rm -f "$R/etc/systemd/system/$SERVICE" "$R/usr/lib/sysusers.d/naturevision.conf" "$R/usr/lib/tmpfiles.d/naturevision.conf"
    if systemd_running; then systemctl daemon-reload; fi
    rm -rf "$VENV"
    say "removed $SERVICE, $VENV (the venv and the models)"
    if [ "$PURGE" = 0 ]; then
        say "kept: /etc/naturevision, /var/lib/naturevision, /srv/naturevision and the user $USER_NAME (--purge removes them)"
        return 0
    fi
    rm -rf "$R/etc/naturevision" "$R/var/lib/naturevision" "$R/srv/naturevision"
    if id_in_root passwd $USER_NAME >/dev/null; then userdel $(in_scratch_root && echo --root "$ROOT") $USER_NAME; fi
    if id_in_root group $USER_NAME >/dev/null; then groupdel $(in_scratch_root && echo --root "$ROOT") $USER_NAME; fi
    say "purged: /etc/naturevision, /var/lib/naturevision, /srv/naturevision, the user $USER_NAME"
}

main() {
    parse_args "$@"
    check_prerequisites "$@"
    "$ACTION"
}

main "$@"
