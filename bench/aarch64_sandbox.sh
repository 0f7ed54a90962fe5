#!/usr/bin/env bash
# An aarch64 Python 3.11 under user-mode emulation, from the package registries only, for running
# model files on ONNX Runtime's aarch64 kernels on an x86_64 Linux machine.
#
#   aarch64_sandbox.sh DIR [REQUIREMENT...] [--layer NAME [REQUIREMENT...] [--no-deps REQUIREMENT...]]
#
# DIR/root     Debian bookworm's arm64 python3.11 and the libraries it and the wheels load,
#              unpacked with `dpkg -x` (nothing is installed on this machine)
# DIR/qemu-aarch64   the statically linked qemu-aarch64 of Debian trixie's qemu-user (10.0);
#              bookworm's qemu 7.2 dies with SIGSEGV importing onnxruntime 1.31
# DIR/site     the REQUIREMENTs (markers evaluated for linux/aarch64/CPython 3.11), aarch64 wheels
# DIR/bin/python3   runs the emulated interpreter with DIR/site after any $PYTHONPATH
# DIR/layer-NAME    with --layer: one runtime's heavier wheels over DIR/site, made only when asked (ExecuTorch's:
#              torch and the CUDA libraries its aarch64 wheel links); its REQUIREMENTs with their
#              dependencies, then the --no-deps ones without theirs (pip evaluates a dependency's markers
#              for this machine, not for aarch64); DIR/bin/python3-NAME runs with DIR/site, then the layer
#
# apt-get runs with its own sources, lists and cache under DIR: the machine's apt sources,
# architectures (no `dpkg --add-architecture`) and package lists are never touched. A stamp per
# part (this script's hash and what was asked) makes a second run instant. Progress goes to
# stderr; a failure is one line on stderr, exit 2 where this machine cannot build it (not x86_64
# Linux, no apt-get/dpkg-deb, no Debian archive key, the archive unreachable), 1 otherwise.
# $PYTHON (default python3) is the interpreter whose pip fetches the wheels.
set -euo pipefail

BOOKWORM_PACKAGES=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libcrypt1 zlib1g
                   libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libuuid1 libgcc-s1 libstdc++6)
MIRROR=http://deb.debian.org/debian
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# pip (23.2) takes a --platform as given, without the older glibc tags it implies: name each one
# bookworm runs (ai-edge-litert's wheel is manylinux_2_27, numpy's manylinux_2_28, others 2014).
PLATFORM_ARGS=()
for ((minor = 36; minor >= 17; minor--)); do PLATFORM_ARGS+=(--platform "manylinux_2_${minor}_aarch64"); done
PLATFORM_ARGS+=(--platform manylinux2014_aarch64)
PYTHON=${PYTHON:-python3}

fail() { echo "aarch64 sandbox: $1" >&2; exit "${2:-1}"; }
say() { echo "aarch64 sandbox: $*" >&2; }

[[ $# -ge 1 ]] || fail "usage: aarch64_sandbox.sh DIR [REQUIREMENT...]" 1
DIR=$1; shift
[[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] || fail "runs on x86_64 Linux only (this is $(uname -s) $(uname -m))" 2
for tool in apt-get dpkg-deb flock sha256sum; do
    command -v "$tool" >/dev/null || fail "needs $tool, which this machine lacks (Debian or Ubuntu with apt)" 2
done
[[ -r $KEYRING ]] || fail "needs Debian's archive keys at $KEYRING (package debian-archive-keyring)" 2
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
LOG=$DIR/build.log
SCRIPT_HASH=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
exec 9>"$DIR/.lock"
flock 9  # one builder at a time per folder (parallel test sessions share the cache)

WORK=$(mktemp -d "$DIR/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# apt-get for one suite and architecture, everything it keeps under $WORK/apt-$1.
private_apt() {
    local name=$1 suite=$2 arch=$3; shift 3
    local base=$WORK/apt-$name
    mkdir -p "$base/lists/partial" "$base/cache/archives/partial"
    echo "deb [arch=$arch signed-by=$KEYRING] $MIRROR $suite main" >"$base/sources.list"
    apt-get -q -o Dir::Etc::SourceList="$base/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$base/lists" -o Dir::Cache="$base/cache" -o Dir::State::status=/dev/null \
        -o APT::Architecture="$arch" -o APT::Architectures::="$arch" -o Acquire::Languages=none \
        -o APT::Sandbox::User="$(id -un)" "$@"
}

# Download PACKAGES of SUITE/ARCH into $WORK/debs-NAME.
fetch() {
    local name=$1 suite=$2 arch=$3; shift 3
    say "fetching $* ($suite, $arch) from $MIRROR"
    private_apt "$name" "$suite" "$arch" update >>"$LOG" 2>&1 \
        || fail "apt-get update of $suite ($arch) from $MIRROR failed (network?): see $LOG" 2
    mkdir -p "$WORK/debs-$name"
    (cd "$WORK/debs-$name" && private_apt "$name" "$suite" "$arch" download "$@") >>"$LOG" 2>&1 \
        || fail "apt-get download from $suite ($arch) failed: see $LOG"
}

ROOT_STAMP="root $SCRIPT_HASH"
if [[ $(head -n1 "$DIR/root.stamp" 2>/dev/null) != "$ROOT_STAMP" ]]; then
    : >"$LOG"
    rm -rf "$DIR/root" "$DIR/qemu-aarch64" "$DIR/root.stamp"
    fetch bookworm bookworm arm64 "${BOOKWORM_PACKAGES[@]}"
    fetch trixie trixie amd64 qemu-user
    say "unpacking"
    for deb in "$WORK"/debs-bookworm/*.deb; do dpkg-deb -x "$deb" "$WORK/root"; done
    dpkg-deb --fsys-tarfile "$WORK"/debs-trixie/qemu-user_*.deb | tar -x -C "$WORK" ./usr/bin/qemu-aarch64
    "$WORK/usr/bin/qemu-aarch64" -L "$WORK/root" "$WORK/root/usr/bin/python3.11" -c "import ssl, zlib, ctypes" \
        >>"$LOG" 2>&1 || fail "the emulated python3.11 does not start: see $LOG"
    mv "$WORK/root" "$DIR/root"
    mv "$WORK/usr/bin/qemu-aarch64" "$DIR/qemu-aarch64"
    {
        echo "$ROOT_STAMP"
        for deb in "$WORK"/debs-*/*.deb; do dpkg-deb -W --showformat='${Package}=${Version}\n' "$deb"; done
    } >"$DIR/root.stamp.tmp"
    mv "$DIR/root.stamp.tmp" "$DIR/root.stamp"
    say "built $DIR/root ($(grep -m1 ^python3.11-minimal= "$DIR/root.stamp"), $(grep -m1 ^qemu-user= "$DIR/root.stamp"))"
else
    say "$DIR/root is up to date"
fi

# Each REQUIREMENT for linux/aarch64, into the file $1: pip evaluates markers for the machine it runs
# on even with --platform, which would pick onnxruntime-gpu (x86_64 only) here.
aarch64_requirements() {
    local out=$1; shift
    "$PYTHON" - "$@" >"$out" <<'EOF' || fail "could not read the requirements $* with $PYTHON"
import sys
try:
    from packaging.requirements import Requirement
except ImportError:  # pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement
AARCH64 = {"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux", "os_name": "posix",
           "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "extra": ""}
for line in sys.argv[1:]:
    requirement = Requirement(line)
    if requirement.marker is None or requirement.marker.evaluate(AARCH64):
        requirement.marker = None
        print(requirement)
EOF
}

# The aarch64 wheels of the requirements file $2 into the folder $1 (PIP OPTION... after them).
install_wheels() {
    local target=$1 requirements=$2; shift 2
    [[ -s $requirements ]] || return 0
    "$PYTHON" -m pip install -q --disable-pip-version-check --no-input --ignore-installed \
        "${PLATFORM_ARGS[@]}" --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
        --target "$target" "$@" -r "$requirements" >>"$LOG" 2>&1 \
        || fail "pip could not install aarch64 wheels of $(paste -sd' ' "$requirements"): see $LOG"
}

# The launcher $1 (in DIR/bin) with the folders $2... on the emulated interpreter's path.
launcher() {
    local name=$1 path; shift
    path=$(printf '%s:' "$@"); path=${path%:}
    cat >"$WORK/$name" <<EOF
#!/bin/sh
# Python 3.11 on aarch64 under qemu-user emulation (made by aarch64_sandbox.sh).
PYTHONPATH="\${PYTHONPATH:+\$PYTHONPATH:}$path" PYTHONNOUSERSITE=1 \\
    exec "$DIR/qemu-aarch64" -L "$DIR/root" "$DIR/root/usr/bin/python3.11" "\$@"
EOF
    chmod +x "$WORK/$name"
    mv "$WORK/$name" "$DIR/bin/$name"
}

BASE=() LAYER="" LAYER_REQUIREMENTS=() LAYER_NO_DEPS=() part=base
for argument in "$@"; do
    case $part:$argument in
        base:--layer) part=name ;;
        name:*) LAYER=$argument part=layer ;;
        layer:--no-deps) part=no-deps ;;
        base:*) BASE+=("$argument") ;;
        layer:*) LAYER_REQUIREMENTS+=("$argument") ;;
        no-deps:*) LAYER_NO_DEPS+=("$argument") ;;
    esac
done
[[ $part != name && $LAYER != */* ]] || fail "--layer needs a NAME (no slash)" 1

REQUIREMENTS=$WORK/requirements.txt
aarch64_requirements "$REQUIREMENTS" "${BASE[@]}"
SITE_STAMP="site $SCRIPT_HASH $(sort "$REQUIREMENTS" | paste -sd' ')"
if [[ $(cat "$DIR/site.stamp" 2>/dev/null) != "$SITE_STAMP" ]]; then
    say "installing aarch64 wheels (glibc 2.36 and older): $(paste -sd' ' "$REQUIREMENTS")"
    rm -rf "$DIR/site" "$DIR/site.stamp"
    mkdir -p "$WORK/site"
    install_wheels "$WORK/site" "$REQUIREMENTS"
    mv "$WORK/site" "$DIR/site"
    echo "$SITE_STAMP" >"$DIR/site.stamp"
else
    say "$DIR/site is up to date"
fi
mkdir -p "$DIR/bin"
launcher python3 "$DIR/site"
[[ -n $LAYER ]] || { echo "$DIR/bin/python3"; exit 0; }

LAYER_DIR=$DIR/layer-$LAYER
aarch64_requirements "$WORK/layer.txt" "${LAYER_REQUIREMENTS[@]}"
aarch64_requirements "$WORK/layer-no-deps.txt" "${LAYER_NO_DEPS[@]}"
LAYER_STAMP="layer $SCRIPT_HASH $(sort "$WORK/layer.txt" | paste -sd' ') --no-deps $(sort "$WORK/layer-no-deps.txt" | paste -sd' ')"
if [[ $(cat "$LAYER_DIR.stamp" 2>/dev/null) != "$LAYER_STAMP" ]]; then
    say "installing the $LAYER layer's aarch64 wheels: $(paste -sd' ' "$WORK/layer.txt"), and without their" \
        "dependencies: $(paste -sd' ' "$WORK/layer-no-deps.txt")"
    rm -rf "$LAYER_DIR" "$LAYER_DIR.stamp"
    mkdir -p "$WORK/layer"
    install_wheels "$WORK/layer" "$WORK/layer.txt"
    install_wheels "$WORK/layer" "$WORK/layer-no-deps.txt" --no-deps
    mv "$WORK/layer" "$LAYER_DIR"
    echo "$LAYER_STAMP" >"$LAYER_DIR.stamp"
    say "built $LAYER_DIR ($(du -sm "$LAYER_DIR" | cut -f1) MB)"
else
    say "$LAYER_DIR is up to date"
fi
launcher "python3-$LAYER" "$DIR/site" "$LAYER_DIR"
echo "$DIR/bin/python3-$LAYER"
