"""The house's plan (DESIGN.md): hardware -> profiles -> simulator -> reports, and inside simulator/
rooms by concept whose imports run one way, each room's package the only door into it, a light core."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "simulator"
FORBIDDEN = {"hardware": {"profiles", "simulator", "reports"}, "profiles": {"simulator", "reports"},
             "reports": {"hardware", "profiles", "simulator"}}
# simulator rooms by position in the flow: a room imports only rooms further down (higher rank).
# cli -> studies/validation -> results -> run -> inert_settings -> accounting/scenario -> features
# -> engine -> cost -> models/workload -> errors. Rooms of equal rank are independent of each other.
RANKS = {"cli": 0, "studies": 1, "validation": 1, "results": 2, "run": 4, "inert_settings": 4.5, "accounting": 5,
         "scenario": 5,
         "kv": 6, "speculative": 6, "moe": 6, "parallel": 6, "disagg": 6, "engine": 7, "cost": 8, "models": 9, "workload": 9, "errors": 10}
FEATURES = {"kv", "speculative", "moe", "parallel", "disagg"}
# profiles/ modules that load torch or NVML when used: only the CLI and validation measure
GPU_PROFILE_MODULES = {"profiles.profiler", "profiles.hf_engine", "profiles.kernels", "profiles.timers",
                       "profiles.nvml"}


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every absolute import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
    return out


def imported_packages(path: Path) -> set[str]:
    return {module.split(".")[0] for module, _ in imports(path)}


def room_of(path: Path) -> str:
    return path.relative_to(SIM).parts[0].removesuffix(".py")


def simulator_files() -> list[Path]:
    return sorted(p for p in SIM.rglob("*.py") if p.parent != SIM or p.name != "__init__.py")


def room_package(room: str) -> bool:
    return (SIM / room / "__init__.py").is_file()


def exports(room: str) -> set[str]:
    tree = ast.parse((SIM / room / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return {ast.literal_eval(e) for e in node.value.elts}
    return set()


def cross_room_imports():
    """(importing file, its room, imported room, module, names) for imports between rooms."""
    for path in simulator_files():
        me = room_of(path)
        for module, names in imports(path):
            parts = module.split(".")
            if parts[0] == "simulator" and len(parts) > 1 and parts[1] != me:
                yield path, me, parts[1], module, names


def test_import_direction():
    for package, forbidden in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            bad = imported_packages(path) & forbidden
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_every_room_has_a_place_in_the_flow():
    rooms = {p.name for p in SIM.iterdir() if p.is_dir() and p.name != "__pycache__"}
    rooms |= {p.stem for p in SIM.glob("*.py") if p.name != "__init__.py"}
    assert rooms == set(RANKS), f"place new rooms in RANKS: {sorted(rooms ^ set(RANKS))}"


def test_rooms_import_one_way():
    bad = [f"{p.relative_to(ROOT)} ({me}) imports {module} ({room})"
           for p, me, room, module, _ in cross_room_imports() if RANKS[room] <= RANKS[me]]
    assert not bad, "imports against the flow:\n" + "\n".join(bad)


def test_engine_imports_no_feature():
    bad = [f"{p.relative_to(ROOT)} imports {module}" for p, me, room, module, _ in cross_room_imports()
           if me == "engine" and room in FEATURES]
    assert not bad, "the engine takes features as components:\n" + "\n".join(bad)


def test_other_rooms_enter_through_the_package_and_its_exports():
    bad = []
    for p, _, room, module, names in cross_room_imports():
        if not room_package(room):
            continue  # run.py, scenario.py, errors.py are modules
        if module != f"simulator.{room}":
            bad.append(f"{p.relative_to(ROOT)}: import from simulator.{room}, not {module}")
        else:
            bad += [f"{p.relative_to(ROOT)}: {n} is not in simulator/{room}/__init__.py __all__"
                    for n in names if n not in exports(room)]
    assert not bad, "\n".join(bad)


def test_packages_export_only_what_other_rooms_use():
    used: dict[str, set[str]] = {}
    for _, _, room, module, names in cross_room_imports():
        used.setdefault(room, set()).update(names)
    unused = {room: sorted(exports(room) - used.get(room, set()))
              for room in RANKS if room_package(room) and room != "cli"}
    assert not any(unused.values()), f"exported but used by no other room: {unused}"


def test_module_names_do_not_repeat_their_folder():
    stems = {"speculative": ("spec",), "cli": ("cli",), "moe": ("moe", "expert"), "kv": ("kv",),
             "models": ("model",), "workload": ("workload",), "engine": ("engine",), "cost": ("cost",),
             "results": ("result",), "studies": ("stud",), "accounting": ("account",), "validation": ("valid",),
             "compare": ("compare",), "plan": ("plan",)}
    def repeats(p: Path) -> bool:
        folder = p.parent.name
        prefixes = stems.get(folder, (folder,)) + (folder,)
        return p.stem == folder or any(p.stem.startswith(f"{s}_") for s in prefixes)

    bad = [str(p.relative_to(ROOT)) for p in simulator_files() if p.parent != SIM and repeats(p)]
    assert not bad, f"module names repeating their folder: {bad}"


def test_every_package_says_what_it_owns():
    for init in SIM.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init.relative_to(ROOT)} needs a docstring saying what the room owns"


def test_only_the_cli_imports_reports():
    for path in simulator_files():
        if room_of(path) != "cli":
            assert "reports" not in imported_packages(path), path.relative_to(ROOT)


def test_only_cli_and_validation_import_the_measuring_profiles():
    for path in simulator_files():
        if room_of(path) not in ("cli", "validation"):
            bad = {m for m, _ in imports(path)} & GPU_PROFILE_MODULES
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_import_simulator_stays_light():
    rooms = " ".join(f"simulator.{r}," for r in RANKS)
    code = (f"import sys, simulator, {rooms} simulator.cli.main; "
            "print(' '.join(m for m in ('torch', 'pynvml', 'plotly', 'reports', 'pandas', 'ray', 'transformers')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    bare = subprocess.run([sys.executable, "-c", "import sys, simulator; print(len([m for m in sys.modules "
                           "if m.startswith('simulator.')]))"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert bare.stdout.strip() == "0", "import simulator should load no room"
