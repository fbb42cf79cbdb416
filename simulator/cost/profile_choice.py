"""Which measured profile a scenario uses: `--profile PATH`, else a shipped one for its device.

Owns resolution (a table directory or table.csv is fitted on load; a saved fit JSON is read as
is; "none" forces the roofline), the default search under profiles/data/<device>/, and the
device/dtype match check (a mismatch is an error unless profile_mismatch_ok). fp16 and bf16
count as the same dtype: same width, same peak on every catalog GPU. Never imports torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from profiles.fit import FittedProfile, load_fit
from profiles.table import METADATA_NAME, ProfileError, load_profile
from simulator.errors import ServesimError

DATA_DIR = Path(__file__).resolve().parents[2] / "profiles" / "data"
SAME_DTYPES = ({"bf16", "fp16"},)
PROFILE_KINDS = "expected a saved fit (.json from `servesim fit --out`), a profile table directory or its table.csv"


@dataclass(frozen=True, slots=True)
class ChosenProfile:
    fit: FittedProfile
    name: str  # path as given / shipped path relative to the repository
    shipped: bool


def dtypes_match(a: str | None, b: str | None) -> bool:
    return a == b or any({a, b} <= group for group in SAME_DTYPES)


def load_any(path: Path) -> FittedProfile:
    """A saved fit (.json) or a profile table (directory / table.csv), fitted on load."""
    try:
        if path.suffix == ".json" and path.name != METADATA_NAME:
            return load_fit(path)
        profile = load_profile(path)
    except (ProfileError, OSError) as exc:
        raise ServesimError(f"profile {str(path)!r}: {exc}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a JSON object that is not a fit
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise ServesimError(f"{exc}; {PROFILE_KINDS}") from None
        what = f"lacks key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ServesimError(f"profile {str(path)!r}: not a servesim profile ({what}); {PROFILE_KINDS}") from None
    provenance = dict(profile.metadata) | {"table": str(profile.path)}
    return FittedProfile.from_rows(profile.rows, provenance)


def shipped_candidates(device: str, model: str, *, include_fits: bool = True) -> list[Path]:
    """Shipped profiles for `device`: a table measured on this model first, then (include_fits) the
    saved fits and the device's other tables. Without include_fits only a same-model table
    qualifies: the device calibration (device.json) prices everything else."""
    folder = DATA_DIR / device
    if not folder.is_dir():
        return []
    tables = sorted(p.parent for p in folder.glob(f"*/{METADATA_NAME}"))
    fits = sorted(folder.glob("*.fit.json"))  # device.json (the calibration) is device_choice.py's
    same_model = [t for t in tables if json.loads((t / METADATA_NAME).read_text()).get("model") == model]
    if not include_fits:
        return same_model
    return same_model + fits + [t for t in tables if t not in same_model]


def _check_match(fit: FittedProfile, name: str, hardware: str, dtype: str, ok: bool) -> None:
    problems = []
    if fit.device != hardware:
        problems.append(f"device {fit.device!r} (scenario: {hardware!r})")
    if not dtypes_match(fit.dtype, dtype):
        problems.append(f"dtype {fit.dtype!r} (scenario: {dtype!r})")
    if problems and not ok:
        raise ServesimError(f"profile {name} was measured on {' and '.join(problems)}; "
                            "pass --profile-mismatch-ok to use it anyway")


def choose_profile(*, profile: str | None, hardware: str, model: str, dtype: str,
                   mismatch_ok: bool, include_fits: bool = True) -> ChosenProfile | None:
    if profile is not None and profile.lower() == "none":
        return None
    if profile is not None:
        path = Path(profile)
        if not path.exists():
            raise ServesimError(f"profile {profile!r} does not exist (a table directory, table.csv or fit .json)")
        fit = load_any(path)
        _check_match(fit, profile, hardware, dtype, mismatch_ok)
        return ChosenProfile(fit, profile, False)
    for path in shipped_candidates(hardware, model, include_fits=include_fits):
        fit = load_any(path)
        if dtypes_match(fit.dtype, dtype) and fit.device == hardware:
            return ChosenProfile(fit, str(path.relative_to(DATA_DIR.parents[1])), True)
    return None
