"""The device catalog: shipped TOML files under hardware/data/ and user files by path.

Owns name resolution and TOML -> DeviceSpec conversion. Errors are ValueError subclasses
(LookupError for unknown names) with the known names listed; the CLI turns them into exit 2.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from hardware.probe import probe_cpu_overrides
from hardware.spec import DeviceSpec

DATA_DIR = Path(__file__).parent / "data"


class UnknownDeviceError(ValueError):
    pass


def device_names() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.toml"))


def catalog_file(name_or_path: str | Path, data_dir: Path, *, what: str, example: str,
                 error: type[ValueError]) -> tuple[Path, bool]:
    """(file, shipped?) for a catalog name in `data_dir` or a path to a user's TOML file; `error`
    lists the known names when neither exists. `example` is an absolute path (a hint that works
    from any directory)."""
    if isinstance(name_or_path, str) and not name_or_path.strip():
        known = ", ".join(sorted(p.stem for p in data_dir.glob("*.toml")))
        raise error(f"{what} {name_or_path!r} is empty; give a known {what} ({known}) or a path to a .toml file")
    path = Path(name_or_path)
    # a bare catalog name wins over a same-named directory in the working directory (`--hardware l4`
    # run next to an `l4/` results folder); a path with a separator or a .toml suffix is a file
    is_name = isinstance(name_or_path, str) and path.suffix != ".toml" and "/" not in name_or_path and (
        (data_dir / f"{name_or_path}.toml").is_file()
        or any(p.stem.lower() == name_or_path.lower() for p in data_dir.glob("*.toml")))
    if not is_name and (path.suffix == ".toml" or path.exists()):
        if path.is_dir():
            raise error(f"{what} file {str(name_or_path)!r} is a directory; expected a .toml file (see {example})")
        if not path.is_file():
            raise error(f"{what} file {str(name_or_path)!r} does not exist")
        return path, False
    shipped = data_dir / f"{name_or_path}.toml"
    if not shipped.is_file():  # names are case-insensitive, as model names are (`H100-SXM`)
        shipped = next((p for p in data_dir.glob("*.toml") if p.stem.lower() == str(name_or_path).lower()), shipped)
    if not shipped.is_file():
        known = ", ".join(sorted(p.stem for p in data_dir.glob("*.toml")))
        raise error(f"unknown {what} {str(name_or_path)!r}; known {what}s: {known} "
                    f"(or pass a path to your own .toml; copy {example} to start one)")
    return shipped, True


def load_device(name_or_path: str | Path) -> DeviceSpec:
    """A catalog name (`h100-sxm`) or a path to a device TOML file."""
    path, shipped = catalog_file(name_or_path, DATA_DIR, what="device", example=str(DATA_DIR / "h100-sxm.toml"),
                                 error=UnknownDeviceError)
    spec = parse_device_file(path)
    return probe_cpu_overrides(spec) if shipped and spec.kind == "cpu" else spec


def read_spec_file(path: Path, build):
    """build(raw TOML dict, origin) -> spec; every error names the file (and a missing key)."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a TOML file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory; expected a TOML file") from None
    try:
        return build(raw, origin=str(path))
    except KeyError as exc:
        raise ValueError(f"{path}: missing required key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def check_keys(raw: dict, allowed: dict[str, set[str] | None]) -> None:
    """Refuse what a spec file's reader would silently ignore: a top-level key not in `allowed`, or
    a key of a table not in its set (None: the table's keys are checked where they are read, e.g.
    peak_tflops' dtypes). Raises ValueError naming the key and the allowed ones."""
    if unknown := sorted(set(raw) - set(allowed)):
        raise ValueError(f"unknown field(s) {unknown}; allowed: {', '.join(allowed)}")
    for table, keys in allowed.items():
        if keys is None or not isinstance(raw.get(table), dict):
            continue
        if unknown := sorted(set(raw[table]) - keys):
            raise ValueError(f"unknown field(s) {[f'{table}.{k}' for k in unknown]}; allowed in [{table}]: "
                             f"{', '.join(sorted(keys))}")


SOURCES_KEYS = {"specs", "notes"}
DEVICE_KEYS: dict[str, set[str] | None] = {
    **dict.fromkeys(("name", "display_name", "vendor", "kind", "family", "memory_gib", "memory_bandwidth_gb_per_s",
                     "tdp_w", "idle_w"), set()),
    "peak_tflops": None, "host_link": {"kind", "gb_per_s"}, "interconnect": {"kind", "bidirectional_gb_per_s"},
    "price": {"usd_per_hour", "as_of", "source"}, "sources": SOURCES_KEYS,
}


def parse_device_file(path: Path) -> DeviceSpec:
    return read_spec_file(path, _from_dict)


def _number(name: str, value) -> float:
    """A TOML number as float; a string, boolean or table is an error naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _from_dict(raw: dict, *, origin: str) -> DeviceSpec:
    check_keys(raw, DEVICE_KEYS)
    link = raw["host_link"]
    inter = raw.get("interconnect") or {}
    price = raw["price"]
    sources = raw.get("sources", {})
    return DeviceSpec(
        name=raw["name"],
        display_name=raw.get("display_name", raw["name"]),
        vendor=raw.get("vendor", "unknown"),
        kind=raw["kind"],
        family=str(raw.get("family", "")),
        memory_gib=_number("memory_gib", raw["memory_gib"]),
        memory_bandwidth_gb_per_s=_number("memory_bandwidth_gb_per_s", raw["memory_bandwidth_gb_per_s"]),
        peak_tflops={k: _number(f"peak_tflops.{k}", v) for k, v in raw["peak_tflops"].items()},
        tdp_w=_number("tdp_w", raw["tdp_w"]),
        idle_w=_number("idle_w", raw.get("idle_w", 0.1 * _number("tdp_w", raw["tdp_w"]))),
        host_link_kind=link["kind"],
        host_link_gb_per_s=_number("host_link.gb_per_s", link["gb_per_s"]),
        interconnect_kind=inter.get("kind"),
        interconnect_bidirectional_gb_per_s=(
            _number("interconnect.bidirectional_gb_per_s", inter["bidirectional_gb_per_s"]) if "bidirectional_gb_per_s" in inter else None
        ),
        price_usd_per_hour=_number("price.usd_per_hour", price["usd_per_hour"]),
        price_as_of=str(price["as_of"]),
        price_source=str(price.get("source", "")),
        sources=tuple(sources.get("specs", ())),
        notes=str(sources.get("notes", "")),
        origin=origin,
    )
