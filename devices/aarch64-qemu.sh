#!/usr/bin/env bash
# Run edgernn's test suite (or a named subset) on aarch64 under qemu-user emulation.
#
#   sudo devices/aarch64-qemu.sh                          # the whole suite
#   sudo devices/aarch64-qemu.sh tests/test_kernels.py -x # any pytest arguments
#
# Needs root and a Debian/Ubuntu x86-64 host with network access to the Debian archive and
# PyPI. First run: debootstraps a Debian bookworm arm64 root (~6 min), pip-installs the aarch64
# wheels (~2 min) and caches the root as a compressed tarball; later runs unpack the tarball.
# The working tree (tracked and untracked, not ignored, files) is copied into the root and the
# tests run there with LLVM targeting a Raspberry Pi 4 core. Emulated timings say nothing about
# a real Pi's speed: use this for correctness only.
#
# Environment:
#   EDGERNN_QEMU_ROOT   where the arm64 root lives        (default /work/qemu-root)
#   EDGERNN_QEMU_CACHE  the cached root tarball           (default /work/cache/edgernn-arm64-root.tar.gz)
#   NUMBA_CPU_NAME      the core LLVM targets             (default cortex-a72, Pi 4; cortex-a76 = Pi 5)
#   EDGERNN_QEMU_PIP    packages installed into the root's venv
set -euo pipefail

ROOT=${EDGERNN_QEMU_ROOT:-/work/qemu-root}
CACHE=${EDGERNN_QEMU_CACHE:-/work/cache/edgernn-arm64-root.tar.gz}
CPU=${NUMBA_CPU_NAME:-cortex-a72}
PIP_PKGS=${EDGERNN_QEMU_PIP:-"numpy numba onnx onnxruntime ai-edge-litert pytest"}
MIRROR=http://deb.debian.org/debian
REPO=$(cd "$(dirname "$0")/.." && pwd)
SRC=/root/edgernn

say() { printf '[aarch64-qemu %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "error: $*"; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (binfmt registration, debootstrap and chroot need it)"
[ "$(uname -m)" = x86_64 ] || die "this script emulates aarch64 on an x86_64 host; uname -m is $(uname -m)"

host_tools() {
    local missing=()
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing host packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
            { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
    fi
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64 >&2 || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "qemu-aarch64 is not registered with binfmt_misc"
}

# A Raspberry Pi-style /proc/cpuinfo: onnxruntime segfaults under qemu-user while parsing the
# host's x86 cpuinfo (qemu passes the host's file through). LLVM (so Numba) takes the host's
# features from its Features line: a Pi 5's (NUMBA_CPU_NAME=cortex-a76) lists asimddp, the dot
# product edgernn's int8 x int8 kernel uses (qemu's default CPU executes it); a Pi 4's does not.
write_cpuinfo() {
    local f=$1 i part=0xd08 variant=0x0 revision=3 model="Raspberry Pi 4 Model B Rev 1.4"
    local features="fp asimd evtstrm crc32 cpuid"
    if [ "$CPU" = cortex-a76 ]; then
        part=0xd0b variant=0x4 revision=1 model="Raspberry Pi 5 Model B Rev 1.0"
        features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
    fi
    : >"$f"
    for i in 0 1 2 3; do
        cat >>"$f" <<EOF
processor	: $i
BogoMIPS	: 108.00
Features	: $features
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: $variant
CPU part	: $part
CPU revision	: $revision

EOF
    done
    printf 'Hardware\t: BCM2835\nModel\t\t: %s\n' "$model" >>"$f"
}

MOUNTS=()
mount_root() {
    mount -t proc proc "$ROOT/proc"; MOUNTS=("$ROOT/proc" "${MOUNTS[@]}")
    mount --bind /dev "$ROOT/dev"; MOUNTS=("$ROOT/dev" "${MOUNTS[@]}")
    write_cpuinfo "$ROOT/root/cpuinfo"
    mount --bind "$ROOT/root/cpuinfo" "$ROOT/proc/cpuinfo"; MOUNTS=("$ROOT/proc/cpuinfo" "${MOUNTS[@]}")
}
unmount_root() {
    local m
    for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    MOUNTS=()
}
trap unmount_root EXIT

in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/opt/venv/bin:/usr/bin:/bin LANG=C.UTF-8 \
    SSL_CERT_FILE=/root/ca.crt PIP_CERT=/root/ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CPU_NAME="$CPU" "$@"; }

bootstrap() {
    say "debootstrap bookworm arm64 into $ROOT (first stage)"
    mkdir -p "$ROOT"
    debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$ROOT" "$MIRROR" >&2
    cp "$(command -v qemu-aarch64-static)" "$ROOT/usr/bin/" 2>/dev/null || true
    say "second stage (inside the chroot, emulated)"
    chroot "$ROOT" /debootstrap/debootstrap --second-stage >&2
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/root/ca.crt"
    mount_root
    say "venv + pip install $PIP_PKGS"
    in_root python3 -m venv /opt/venv
    in_root python -m pip install --no-cache-dir $PIP_PKGS >&2
    unmount_root
    rm -f "$ROOT"/var/cache/apt/archives/*.deb
    rm -rf "$ROOT/root/.cache"
    say "caching the root as $CACHE"
    mkdir -p "$(dirname "$CACHE")"
    tar -C "$ROOT" -czf "$CACHE.tmp" . && mv "$CACHE.tmp" "$CACHE"
}

host_tools
if [ ! -x "$ROOT/opt/venv/bin/python" ]; then
    if [ -f "$CACHE" ]; then
        say "unpacking the cached root $CACHE into $ROOT"
        mkdir -p "$ROOT" && tar -C "$ROOT" -xzf "$CACHE"
    else
        bootstrap
    fi
fi
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/root/ca.crt"

say "copying the working tree $REPO into the root"
rm -rf "$ROOT$SRC" && mkdir -p "$ROOT$SRC"
(cd "$REPO" && git ls-files -co --exclude-standard -z |
    xargs -0 tar -cf - --ignore-failed-read) | tar -C "$ROOT$SRC" -xf -

mount_root
in_root python -c 'import platform, numpy, numba, onnxruntime, sys; print("machine", platform.machine(), "| python", sys.version.split()[0], "| numpy", numpy.__version__, "| numba", numba.__version__, "| onnxruntime", onnxruntime.__version__)'
say "pytest ${*:-(whole suite)} with NUMBA_CPU_NAME=$CPU"
start=$(date +%s)
set +e
in_root sh -c "cd $SRC && exec python -m pytest -q -p no:cacheprovider \"\$@\"" pytest "$@"
rc=$?
set -e
say "pytest exited $rc after $(( $(date +%s) - start )) s"
exit $rc
