"""README.md as a user reads it: every ```python block runs as written, and its links work on
PyPI (absolute URLs to the docs, never a relative docs/ path the package page cannot follow).

Each block runs in a fresh interpreter whose working directory looks like the repository root
(examples/, exporters/ and tests/ linked in a temporary folder, so the files a block writes,
model.onnx or kws.tflite, land there and not in the checkout). A block that imports a package
this environment lacks (tensorflow for the Keras blocks) is skipped, with the package named.
"""
import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgernn.links import DOCS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINKED = ("examples", "exporters", "tests")          # what the blocks read, by repository-relative path


def python_blocks(text):
    """(first line number, code) of every ```python fenced block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, body = i + 2, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start, "\n".join(body) + "\n"))
        i += 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def missing_modules(code):
    """Top-level modules the block imports that are not installed (the repo's own excepted)."""
    missing = []
    for node in ast.walk(ast.parse(code)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        for name in names:
            top = name.split(".")[0]
            if top not in ("edgernn", "exporters") and importlib.util.find_spec(top) is None:
                missing.append(top)
    return sorted(set(missing))


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_python_block_runs_as_written(line, code, tmp_path):
    missing = missing_modules(code)
    if missing:
        pytest.skip(f"README.md:{line} needs {', '.join(missing)}, not installed here")
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, f"README.md:{line} failed:\n{code}\n--- stderr:\n{r.stderr[-3000:]}"


def test_links_are_absolute():
    """Every markdown link is a URL or an in-page anchor: relative ones break on PyPI."""
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    relative = [t for t in targets if not re.match(r"(https?://|#)", t)]
    assert not relative, f"relative links in README.md: {relative}"
    docs = [t for t in targets if "/docs/" in t]
    assert docs and all(t.startswith(DOCS) for t in docs), [t for t in docs if not t.startswith(DOCS)]
    for t in docs:                                       # and each names a page that exists
        page = t[len(DOCS):].split("#")[0]
        assert (ROOT / "docs" / page).is_file(), t
