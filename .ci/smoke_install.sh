#!/usr/bin/env bash
# Smoke test of edgernn as users install it. Builds the wheel from the checkout, then for
#   (a) a fresh venv with the wheel and no extras (no onnx: it runs .ernn files),
#   (b) `pip install --user` of the wheel, in a throwaway HOME and PYTHONUSERBASE,
#   (c) an editable install (`pip install -e`) in a fresh venv, no extras,
# runs, from an empty folder outside the checkout: edgernn info, run (a .npy file, an .npz member
# with --key, stdin to stdout), convert (.ernn -> int8 .ernn with a frame period, then info and
# run on it; also from ONNX where the onnx package is importable), profile --device rpi4 on the
# .ernn (its stored period is the deadline), and edgernn compile when the command exists.
#
#   bash .ci/smoke_install.sh            # PYTHON=python3.12 to use another interpreter
#
# No network is needed once numpy, numba, llvmlite and setuptools wheels of the versions this
# interpreter has are in the wheelhouse ($EDGERNN_WHEELHOUSE, default ~/.cache/edgernn/wheelhouse);
# the first run fills it with `pip download` from the package registry.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
WHEELHOUSE=${EDGERNN_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgernn/wheelhouse}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgernn-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"                                   # never import the checkout's edgernn by accident
START=$SECONDS
PIPQ=(--quiet --disable-pip-version-check)
say() { printf '[smoke %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- the wheel, from a copy of the sources
say "building the wheel"
mkdir -p "$WORK/src" "$WORK/dist"
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/LICENSE" "$WORK/src/"
(cd "$ROOT" && tar cf - --exclude=__pycache__ --exclude='*.pyc' --exclude='*.nbi' --exclude='*.nbc' edgernn) \
    | tar xf - -C "$WORK/src"
if "$PY" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 77)' 2>/dev/null; then
    "$PY" -m pip wheel "${PIPQ[@]}" --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
else
    "$PY" -m pip wheel "${PIPQ[@]}" --no-deps -w "$WORK/dist" "$WORK/src"
fi
WHEEL=$(ls "$WORK"/dist/edgernn-*.whl)
unzip -l "$WHEEL" > "$WORK/wheel.txt"         # a file, not a pipe: grep -q closing a pipe early would
                                              # kill unzip with SIGPIPE, which pipefail counts as a failure
grep -q 'edgernn/device_profiles/rpi4.json' "$WORK/wheel.txt" || fail "the wheel lacks the device profiles"
grep -q '\.dist-info/licenses/LICENSE' "$WORK/wheel.txt" || fail "the wheel lacks LICENSE"

# ---------------------------------------------------------------- dependencies, offline after the first run
PINS=$("$PY" -c 'import numpy, numba, llvmlite, setuptools
print(f"numpy=={numpy.__version__} numba=={numba.__version__} llvmlite=={llvmlite.__version__} setuptools=={setuptools.__version__}")')
OFFLINE=(--no-index --find-links "$WORK/dist" --find-links "$WHEELHOUSE")
mkdir -p "$WHEELHOUSE"
probe=$("$PY" -m pip download "${PIPQ[@]}" --no-index --find-links "$WHEELHOUSE" --no-deps -d "$WORK/probe" $PINS 2>&1) \
    || { say "filling the wheelhouse $WHEELHOUSE ($PINS)"
         "$PY" -m pip download "${PIPQ[@]}" --only-binary=:all: -d "$WHEELHOUSE" $PINS; }

# ---------------------------------------------------------------- the models every install runs
EX=$ROOT/examples
DATA=$EX/data/japanese_vowels.npz
"$PY" -c 'import onnx' 2>/dev/null || fail "$PY needs the onnx package (pip install -e '.[dev]') to convert the example"
(cd "$ROOT" && "$PY" -m edgernn convert "$EX/kws_lstm.onnx" -o "$WORK/kws.ernn" >/dev/null)   # float32, for (a) and (c)

smoke() {   # smoke NAME BIN: the commands, with BIN/edgernn, in an empty folder
    local name=$1 bin=$2 run="$WORK/run-$1"
    local E="$bin/edgernn"
    mkdir -p "$run" && cd "$run"
    say "($name) edgernn from $("$bin/python" -c 'import edgernn; print(edgernn.__file__)' 2>/dev/null || echo '?')"
    "$E" --version
    "$E" info "$EX/japanese_vowels.ernn" >info.txt
    grep -q "model.frame_period_s" info.txt || fail "($name) info on the shipped .ernn"
    "$E" run "$EX/japanese_vowels.ernn" "$DATA" --key test_frames -o vowels.npy >/dev/null
    "$E" run "$EX/japanese_vowels.ernn" "$DATA" -o x.npy 2>err.txt && fail "($name) an .npz without --key ran"
    grep -q "choose the frames with --key" err.txt || fail "($name) the --key message: $(cat err.txt)"
    local src="$EX/kws_lstm.onnx"
    if "$bin/python" -c 'import onnx' 2>/dev/null; then
        "$E" info "$src" >info.txt
        grep -q "time axis: axis 1" info.txt || fail "($name) info on ONNX"
        "$E" run "$src" "$EX/kws_frames.npy" -o kws.npy >/dev/null
    else                                         # no onnx extra: the .ernn converted in the dev environment
        src="$WORK/kws.ernn"
    fi
    "$E" convert "$src" -o kws8.ernn --weights int8 --frame-period 100Hz >/dev/null
    "$E" info kws8.ernn >info.txt
    grep -q "model.frame_period_s = 0.01" info.txt || fail "($name) the period stored by convert"
    "$E" run kws8.ernn "$EX/kws_frames.npy" -o kws8.npy >/dev/null
    "$E" run kws8.ernn - -o - <"$EX/kws_frames.npy" >kws8_stdout.npy 2>/dev/null
    [ ! -e ./-.npy ] || fail "($name) -o - wrote a file named -.npy"
    "$bin/python" -c 'import numpy as np, sys
a, b, want = np.load("kws8.npy"), np.load("kws8_stdout.npy"), np.load(sys.argv[1])
assert a.shape == want.shape == (100, 12) and np.array_equal(a, b), (a.shape, b.shape)
assert np.abs(a - want).max() < 0.05, np.abs(a - want).max()' "$EX/kws_expected_logits.npy" \
        || fail "($name) the .ernn outputs"
    "$E" profile kws8.ernn --device rpi4 --frames 500 --warmup 20 >profile.txt
    grep -q "prediction for Raspberry Pi 4" profile.txt && grep -q "deadline misses" profile.txt \
        || fail "($name) profile: $(cat profile.txt)"
    if "$E" compile --help >/dev/null 2>&1; then
        "$E" compile kws8.ernn >/dev/null || fail "($name) edgernn compile"
    fi
    say "($name) passed"
    cd "$WORK"
}

# ---------------------------------------------------------------- (a) a fresh venv, the wheel, no extras
say "(a) fresh venv with the wheel, no extras"
"$PY" -m venv "$WORK/venv-a"
"$WORK/venv-a/bin/python" -m pip install "${PIPQ[@]}" "${OFFLINE[@]}" "$WHEEL"
"$WORK/venv-a/bin/python" -c 'import edgernn, sys; assert edgernn.__file__.startswith(sys.prefix), edgernn.__file__'
"$WORK/venv-a/bin/python" -c 'import onnx' 2>/dev/null && fail "(a) onnx is importable without the extra"
smoke a "$WORK/venv-a/bin"

# ---------------------------------------------------------------- (b) pip install --user
say "(b) pip install --user, HOME and PYTHONUSERBASE in a throwaway folder"
if "$PY" -c 'import site, sys; sys.exit(not site.ENABLE_USER_SITE or sys.prefix != sys.base_prefix)'; then
    USERPY=$("$PY" -c 'import sys; print(sys.executable)')
else                                         # inside a venv: one that sees the user site
    "$PY" -m venv --system-site-packages "$WORK/venv-b"
    USERPY=$WORK/venv-b/bin/python
fi
(
    export HOME=$WORK/home PYTHONUSERBASE=$WORK/userbase
    mkdir -p "$HOME"
    "$USERPY" -m pip install "${PIPQ[@]}" "${OFFLINE[@]}" --user "$WHEEL"
    ln -s "$USERPY" "$PYTHONUSERBASE/bin/python"
    "$PYTHONUSERBASE/bin/python" -c 'import edgernn, os, sys; assert edgernn.__file__.startswith(os.environ["PYTHONUSERBASE"]), edgernn.__file__'
    smoke b "$PYTHONUSERBASE/bin"
)

# ---------------------------------------------------------------- (c) an editable install
say "(c) editable install in a fresh venv, no extras"
"$PY" -m venv "$WORK/venv-c"
"$WORK/venv-c/bin/python" -m pip install "${PIPQ[@]}" "${OFFLINE[@]}" -e "$ROOT"
"$WORK/venv-c/bin/python" -c 'import edgernn, sys; assert edgernn.__file__.startswith(sys.argv[1]), edgernn.__file__' "$ROOT"
smoke c "$WORK/venv-c/bin"

say "all three installs passed in $((SECONDS - START)) s"
echo "smoke_install: 3 passed, 0 failed"     # (a), (b), (c); a failure exits non-zero above
