"""The wheel carries every shipped data file (device, host and link TOMLs, model configs, profile
tables, engine files, published datasets) and setuptools builds it without a warning (issue 18:
`project.license` as a table, data folders "absent from the packages configuration"). The build
runs on a copy of the tree, so the working tree gets no build/ or egg-info from it."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = ("hardware/data", "profiles/data", "simulator/models/configs", "simulator/validation/data")
SKIP = shutil.ignore_patterns(".venv", ".git", ".hypothesis", ".pytest_cache", ".ruff_cache", "__pycache__",
                              "*.egg-info", "build", "dist", ".servesim-sweeps", "out", "tests", "benchmarks")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    setuptools = pytest.importorskip("setuptools", reason="the build backend is not installed")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} < 77 (the build requirement; the test extra pulls it)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                           "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (whl,) = (tmp / "dist").glob("servesim-*.whl")
    return whl, proc.stdout + proc.stderr


def test_wheel_has_every_data_file(wheel):
    whl, _ = wheel
    names = set(zipfile.ZipFile(whl).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for d in DATA_DIRS for p in (ROOT / d).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and sorted(shipped - names) == []
    assert "hardware/data/hosts/xeon-8462y.toml" in names  # a second-level data folder


def test_build_prints_no_setuptools_warning(wheel):
    _, log = wheel
    warnings = [line.strip() for line in log.splitlines()
                if "warning" in line.lower() and "byte-compiling is disabled" not in line]
    assert warnings == []
