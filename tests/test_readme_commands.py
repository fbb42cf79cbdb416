"""The README's shell examples run as written (issue 18, item 1).

Every ```bash block of README.md is split into commands (a trailing backslash continues a line;
comment lines are dropped) and run, block by block, in one bash process that first runs the
README's activation block (`source .venv/bin/activate`) as written, from a scratch directory
that holds what the README assumes beside the reader: the venv (`.venv`), `benchmarks/`,
`../shared` and `scenario.toml` (the README's own ```toml block). Nothing is resized: every
runnable example is small enough to run as written.

Skipped, each with its reason (SKIPS below; a reason that matches no README command fails, so
the list stays true):
- the quick start's install command: a fresh venv and a full install (about 30 s on the 2-core
  VM): test_quick_start_install_in_a_fresh_venv, @pytest.mark.slow, runs with SERVESIM_SLOW_TESTS=1;
- `bash .ci/run`: the test suite itself (this test runs inside it), and it installs packages;
- `pip install torch==2.13.0 && pip install -e '.[profile]'`: installs packages (.ci/run installs
  the same profile extra into this venv);
- `vllm bench serve ...` and the calibrate/validate/simulate commands that read its files: need a
  GPU and vLLM;
- `servesim profile --device cuda ...`: needs a GPU;
- `servesim validate --quick`: about a minute of real Hugging Face model runs on this CPU
  (tests/test_profiler_torch.py and tests/test_hf_engine_cache.py cover the serving loop).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
VENV = ROOT / ".venv"
QUICK_START_INSTALL = "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/servesim simulate"
ACTIVATE = "source .venv/bin/activate"

SKIPS = {  # a command's beginning -> why the test does not run it
    QUICK_START_INSTALL: "a fresh venv and a full install: test_quick_start_install_in_a_fresh_venv (slow)",
    "bash .ci/run": "the test suite itself, which this test runs inside; it also installs packages",
    "pip install torch==2.13.0": "installs packages; .ci/run installs the same profile extra into this venv",
    "vllm bench serve": "needs a GPU and vLLM",
    "servesim calibrate --bench low.json": "reads the vllm bench files above (a GPU)",
    "servesim validate --bench mid.json": "reads the vllm bench files above (a GPU)",
    "servesim simulate --profile my-h100/": "reads the calibration above (a GPU)",
    "servesim profile --model llama-3-8b --device cuda": "needs a GPU",
    "servesim validate --quick": "about a minute of real model runs on this CPU (covered by test_profiler_torch)",
}


def fenced_blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, body, the heading above it) of every fenced block, in order."""
    out, heading = [], ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        m = re.match(r"^```(\w*)\s*$", line)
        if m:
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            out.append((m.group(1), "\n".join(lines[i + 1:j]), heading))
            i = j
        i += 1
    return out


def commands(body: str) -> list[str]:
    """Shell commands of a block: continued lines joined, blank and comment lines dropped."""
    out, cur = [], ""
    for line in body.splitlines():
        cur += line.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1].rstrip() + " "
            continue
        if cur.strip() and not cur.lstrip().startswith("#"):
            out.append(" ".join(cur.split()))
        cur = ""
    return out


def skip_reason(cmd: str) -> str | None:
    return next((why for start, why in SKIPS.items() if cmd.startswith(start)), None)


BASH_BLOCKS = [(body, heading) for lang, body, heading in fenced_blocks(README) if lang in ("bash", "sh")]
SCENARIO_TOML = next(body for lang, body, _ in fenced_blocks(README)
                     if lang == "toml" and body.startswith("# scenario.toml"))


def test_readme_structure():
    """The quick start is exactly two commands; the activation block follows it; every skip
    reason matches a README command (so the skip list stays true)."""
    quick = [commands(b) for b, h in BASH_BLOCKS if h == "Quick start"]
    assert quick[0] == [QUICK_START_INSTALL, "bash .ci/run"]
    assert quick[1] == [ACTIVATE]
    all_cmds = [c for b, _ in BASH_BLOCKS for c in commands(b)]
    unused = [start for start in SKIPS if not any(c.startswith(start) for c in all_cmds)]
    assert unused == [], f"skip entries that match no README command: {unused}"


RUNNABLE = [(body, heading) for body, heading in BASH_BLOCKS
            if any(skip_reason(c) is None for c in commands(body)) and commands(body) != [ACTIVATE]]


@pytest.fixture
def workdir(tmp_path):
    """A scratch directory laid out as the README's reader has it: the repository's venv and
    benchmarks, ../shared beside it, and the README's scenario.toml."""
    if not (VENV / "bin" / "activate").is_file():
        pytest.skip(f"no venv at {VENV} (the quick start's first command makes it)")
    work = tmp_path / "repo"
    work.mkdir()
    (work / ".venv").symlink_to(VENV)
    (work / "benchmarks").symlink_to(ROOT / "benchmarks")
    if (ROOT.parent / "shared").exists():
        (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    (work / "scenario.toml").write_text(SCENARIO_TOML + "\n")
    return work


@pytest.mark.parametrize("body,heading", RUNNABLE, ids=[h or "top" for _, h in RUNNABLE])
def test_readme_block_runs_as_written(body, heading, workdir, tmp_path):
    lines = ["set -eo pipefail", ACTIVATE]
    for cmd in commands(body):
        why = skip_reason(cmd)
        lines.append(f": skipped, {why!r}" if why else cmd)
        if "../shared" in cmd and not (ROOT.parent / "shared").exists():
            pytest.skip(f"{cmd!r} reads ../shared, which is not beside this checkout")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(SERVESIM_CACHE_DIR=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(["bash", "-c", "\n".join(lines)], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{heading}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SERVESIM_SLOW_TESTS"),
                    reason="a fresh venv and a full install take about 30 s: set SERVESIM_SLOW_TESTS=1 to run it")
def test_quick_start_install_in_a_fresh_venv(tmp_path):
    """The quick start's first command, as written, in a copy of the tree (a fresh .venv)."""
    src = tmp_path / "servesim"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", ".hypothesis", ".pytest_cache",
                                                            "__pycache__", "*.egg-info", "build", ".servesim-sweeps"))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(["bash", "-c", QUICK_START_INSTALL], cwd=src, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Serving Simulation Result" in proc.stdout and "Successful requests:" in proc.stdout
