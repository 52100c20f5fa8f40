"""What a new user meets first, from a built wheel rather than this checkout: the device profiles
ship inside the package (found by any install, ``pip install --user`` included), the wheel
carries the license and its metadata an SPDX expression and the project's URLs, and help texts,
reports and errors link to the docs by URL (the wheel has no docs/ folder).

The wheel is built from a copy of the package sources (pyproject.toml, README.md, LICENSE,
edgernn/) in a temporary folder, so the checkout gets no build/ folder. .ci/smoke_install.sh
goes further: fresh venvs, a --user install and an editable one running every command.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import edgernn
from edgernn.links import DOCS, doc

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.name for p in (ROOT / "edgernn" / "device_profiles").glob("*.json"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- metadata
def test_license_is_an_spdx_expression_with_its_file():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"                     # not the deprecated {text = ...} table
    assert project["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])   # superseded by the expression
    requires = " ".join(PYPROJECT["build-system"]["requires"])
    m = re.search(r"setuptools>=(\d+)", requires)
    assert m and int(m.group(1)) >= 77                             # the first setuptools that reads both
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    for needle in ("Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE, REPRODUCTION, "
                   "AND DISTRIBUTION", "END OF TERMS AND CONDITIONS"):
        assert needle in text


def test_project_urls_and_classifiers():
    project = PYPROJECT["project"]
    urls = project["urls"]
    assert urls["Documentation"] == DOCS                           # one base, the one help texts use
    assert all(u.startswith("https://github.com/edgernn/edgernn") for u in urls.values())
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert any(c.startswith("Programming Language :: Python :: 3") for c in project["classifiers"])
    assert any(c.startswith("Topic ::") for c in project["classifiers"])


def test_profiles_are_package_data():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["edgernn"]
    assert "device_profiles/*.json" in data
    assert "data-files" not in PYPROJECT["tool"]["setuptools"]     # no more share/edgernn/devices
    assert {"rpi4.json", "rpi5.json", "rpi-zero2w.json"} <= set(PROFILES)


# ---------------------------------------------------------------- the docs by URL
def test_docs_urls_name_pages_that_exist():
    assert DOCS.endswith("/docs/") and doc("ops.md", "x") == DOCS + "ops.md#x"
    for path in ("edgernn/cli.py", "edgernn/report.py", "edgernn/ops/control.py", "edgernn/formats/onnx.py"):
        text = (ROOT / path).read_text(encoding="utf-8")
        for page in re.findall(r"doc\(['\"]([\w.-]+\.md)['\"]", text):
            assert (ROOT / "docs" / page).is_file(), (path, page)


def test_device_report_links_by_url():
    kws = edgernn.load(str(ROOT / "examples" / "kws_lstm.onnx"))
    report = edgernn.profile(kws, frames=20, warmup=0, breakdown=False, device="rpi4").report()
    assert doc("profiling.md") in report
    assert not re.search(r"(?<!/)docs/\w+\.md", report.replace(DOCS, "<docs>"))


def test_unsupported_op_error_links_by_url(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Det", ["x"], ["y"])], "det",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", 1])])
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(edgernn.UnsupportedOpError) as e:
        edgernn.load(str(path), time_axis=0)
    assert doc("ops.md") in str(e.value)


# ---------------------------------------------------------------- from a wheel
@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel pip builds from a copy of the package sources."""
    try:
        import setuptools
    except ImportError:  # pragma: no cover
        pytest.skip("setuptools is not installed")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} cannot build a license expression (needs >= 77)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "edgernn", src / "edgernn", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi",
                                                                                     "*.nbc"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                        "--disable-pip-version-check", "-w", str(tmp / "dist"), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (whl,) = (tmp / "dist").glob("edgernn-*.whl")
    return whl


def test_wheel_ships_profiles_license_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for p in PROFILES:
        assert f"edgernn/device_profiles/{p}" in names
    assert not any("/data/" in n and n.endswith(".json") for n in names)      # no share/ data files
    assert any(re.search(r"\.dist-info/licenses/LICENSE$", n) for n in names)
    assert "License-Expression: Apache-2.0" in meta
    assert f"Project-URL: Documentation, {DOCS}" in meta
    assert "Classifier: Programming Language :: Python :: 3" in meta


def test_an_install_outside_the_prefix_finds_the_profiles(wheel, tmp_path):
    """As after `pip install --user`: the package lives away from sys.prefix and the checkout;
    --device rpi4 must still find its profile (it said "known devices: none found")."""
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
                        "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    code = ("import json, edgernn, edgernn.devices as d; "
            "print(json.dumps({'file': edgernn.__file__, 'found': {k: str(v) for k, v in d.available_devices().items()}, "
            "'rpi4': d.load_device('rpi4').title}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGERNN_DEVICES")}
    env["PYTHONPATH"] = str(site)
    r = subprocess.run([sys.executable, "-s", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert Path(out["file"]).resolve().is_relative_to(site.resolve())
    assert {"rpi4", "rpi5", "rpi3b+", "generic-a53"} <= set(out["found"])
    assert all(Path(p).resolve().is_relative_to(site.resolve()) for p in out["found"].values())
    assert out["rpi4"] == "Raspberry Pi 4 Model B"
