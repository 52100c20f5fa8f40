"""Fetch silero-vad's ONNX files from its PyPI wheel (third-party models for the tests and
benchmarks; they are not redistributed in this repository).

    python -m exporters.fetch_silero [--dest DIR]

Downloads ``silero-vad==VERSION`` with ``pip download --no-deps`` (the package registry is
the only network access needed) and extracts ``silero_vad/data/*.onnx`` into DIR (default
``$EDGERNN_THIRD_PARTY/silero-vad-VERSION``, or ``~/.cache/edgernn/silero-vad-VERSION``).
Also extracts silero-vad's own Python helpers ``silero_vad/utils_vad.py`` as
``utils_vad.py`` (its ``get_speech_timestamps`` is the tests' oracle for speech segments; it
needs torch). Prints the directory. Files already there are kept.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "6.2.3"
FILES = ("silero_vad.onnx", "silero_vad_16k_op15.onnx", "silero_vad_half.onnx", "silero_vad_op18_ifless.onnx",
         "silero_vad_openvino_16k.onnx", "silero_vad_16k_sequence.onnx")
#: silero-vad's Python helpers, kept beside the models (path in the wheel -> file name)
HELPERS = {"silero_vad/utils_vad.py": "utils_vad.py"}


def default_dir():
    root = os.environ.get("EDGERNN_THIRD_PARTY") or os.path.join(os.path.expanduser("~"), ".cache", "edgernn")
    return Path(root) / f"silero-vad-{VERSION}"


def fetch(dest=None):
    """The directory holding the six silero-vad ONNX files, downloading them if needed."""
    dest = Path(dest) if dest else default_dir()
    if all((dest / f).is_file() for f in list(FILES) + list(HELPERS.values())):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", f"silero-vad=={VERSION}", "--no-deps",
                        "--quiet", "--disable-pip-version-check", "-d", tmp], check=True)
        wheel = glob.glob(os.path.join(tmp, "silero_vad-*.whl"))[0]
        with zipfile.ZipFile(wheel) as z:
            for f in FILES:
                (dest / f).write_bytes(z.read(f"silero_vad/data/{f}"))
            for inside, f in HELPERS.items():
                (dest / f).write_bytes(z.read(inside))
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", help="directory for the .onnx files")
    print(fetch(ap.parse_args().dest))


if __name__ == "__main__":
    main()
