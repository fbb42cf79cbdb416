"""DESIGN.md's import direction: hardware -> profiles -> simulator -> reports, light core."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"hardware": {"profiles", "simulator", "reports"}, "profiles": {"simulator", "reports"},
             "reports": {"hardware", "profiles", "simulator"}}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_import_direction():
    for package, forbidden in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            bad = imported_packages(path) & forbidden
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_only_cli_modules_import_reports():
    for path in (ROOT / "simulator").rglob("*.py"):
        if not path.name.startswith("cli"):
            assert "reports" not in imported_packages(path), path.name


def test_import_simulator_stays_light():
    code = ("import sys, simulator, simulator.run, simulator.results.summary, simulator.cli.main; "
            "print(' '.join(m for m in ('torch', 'pynvml', 'plotly', 'reports', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
