"""Refusing settings a command would silently ignore: typed flags, `--vary` keys and `--scenario`
file keys that none of the scenarios it runs reads (the rules: simulator/inert_settings.py), and
the fields a command sets itself (plan's search, tts's sweep)."""
from __future__ import annotations

import argparse
import warnings

from simulator.cli.simulate import OPTIONS
from simulator.errors import ServesimError
from simulator.inert_settings import inert_reason
from simulator.scenario import Scenario, scenario_file_keys, scenario_from_dict


def refuse_inert_flags(args: argparse.Namespace, scenarios: list[Scenario], varied: dict | None = None,
                       replaced: dict[str, str] | None = None) -> None:
    """Raise ServesimError (one line) for
    - a typed flag that none of `scenarios` (what the command runs) reads, or one in `replaced`
      (field -> why: the command sets that field itself);
    - a `varied` key (compare's and plan's grid) that changes nothing in any of them;
    - keys of the `--scenario` file, all in one line, that the file's own settings leave unread and
      that none of `scenarios` reads (a typed flag or the grid that replaces a key, or makes it
      unread as a what-if, is the user's explicit choice). A key equal to its default is never
      refused: a template that writes every knob out runs. File keys in `replaced` get one warning
      (a file describing a deployment is a fair base for plan or tts), typed flags an error.
    The reason given for a flag is `scenarios[0]`'s."""
    varied, replaced = varied or {}, replaced or {}

    def reason(field: str) -> tuple[str, str] | None:
        reasons = [inert_reason(s, field) for s in scenarios]
        return reasons[0] if all(reasons) else None

    for flag, (field, _, _) in OPTIONS.items():
        value = getattr(args, field, None)
        if value is None or field in varied:
            continue
        if field in replaced:
            raise ServesimError(f"{flag}={value!r} has no effect here: {replaced[field]}; allowed: leave {flag} unset")
        if got := reason(field):
            raise ServesimError(f"{flag}={value!r} has no effect here: {got[0]}; allowed: {got[1]}, or leave "
                                f"{flag} unset")
    for key, values in varied.items():
        if got := reason(key):
            raise ServesimError(f"--vary {key}={','.join(map(str, values))} changes nothing: {got[0]}; allowed: "
                                f"{got[1]}, or vary another key")
    if getattr(args, "scenario", None):
        _refuse_inert_file_keys(args, args.scenario, varied, replaced, reason)


def _refuse_inert_file_keys(args: argparse.Namespace, path: str, varied: dict, replaced: dict[str, str],
                            reason) -> None:
    keys = scenario_file_keys(path)
    own, defaults = scenario_from_dict(keys, origin=path), Scenario()
    found, set_here = [], []
    for key, value in keys.items():
        if getattr(args, key, None) is not None or key in varied or getattr(own, key) == getattr(defaults, key):
            continue
        if key in replaced:
            set_here.append(f"{key} = {value!r} ({replaced[key]})")
        elif (got := inert_reason(own, key)) and reason(key):
            found.append(f"{key} = {value!r} ({got[0]}; it counts with {got[1]})")
    if set_here:  # the file describes a deployment; this command sets these itself by design: say so
        values = "values are" if len(set_here) > 1 else "value is"
        warnings.warn(f"{path}: {'; '.join(set_here)}: set by this command, the file's {values} not used",
                      stacklevel=2)
    if found:
        one = len(found) == 1
        raise ServesimError(f"{path}: {'; '.join(found)}: {'this key has' if one else 'these keys have'} no effect "
                            f"here; remove {'it' if one else 'them'} from the file")
