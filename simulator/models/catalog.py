"""The shipped model catalog (configs/*.json) and how a `--model` argument finds a config.

Owns resolving a model argument: a catalog name (`llama-3.1-8b`), a Hugging Face id of a
catalog model (`meta-llama/Llama-3.1-8B-Instruct`, case-insensitive; each shipped config names
its ids in `_hf_ids`, and instruct/chat/it variants resolve to the same architecture), a path to a
config.json or a folder holding one. An unknown name lists the closest catalog names; nothing is
downloaded. Reading the config is architectures.py's job.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import re
from functools import lru_cache
from pathlib import Path

from simulator.errors import ServesimError
from simulator.models.architectures import spec_from_config
from simulator.models.quantization import modelopt_config
from simulator.models.spec import ModelSpec

CONFIG_DIR = Path(__file__).parent / "configs"
VARIANT_SUFFIX = re.compile(r"-(instruct|chat|it|hf|base|fp8|awq|gptq|int4|int8)(-\d+)?$")


def model_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def _normal(text: str) -> str:
    text = text.strip().lower().removeprefix("hf://").removeprefix("https://huggingface.co/")
    text = text.rsplit("/", 1)[-1]
    while (stripped := VARIANT_SUFFIX.sub("", text)) != text:
        text = stripped
    return text.replace("meta-llama-", "llama-").replace("_", "-")


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Lower-cased names and Hugging Face ids (with and without variant suffixes) -> catalog name."""
    out = {}
    for name in model_names():
        raw = json.loads((CONFIG_DIR / f"{name}.json").read_text())
        for alias in [name, *raw.get("_hf_ids", [])]:
            out[alias.lower()] = name
            out[_normal(alias)] = name
    return out


def resolve_model_name(text: str) -> str | None:
    """The catalog name a model argument means, or None."""
    a = _aliases()
    return a.get(text.strip().lower()) or a.get(_normal(text))


def config_path(name_or_path: str | Path) -> tuple[Path, str]:
    """(config.json path, model name) of a model argument (module docstring); raises ServesimError
    for a missing file or an unknown name (listing the closest catalog names)."""
    text = str(name_or_path)
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return path, (path.parent.name if path.name == "config.json" else path.stem)
    resolved = resolve_model_name(text)
    if resolved is not None:
        return CONFIG_DIR / f"{resolved}.json", resolved
    if path.suffix == ".json" or text.startswith((".", "/")) or (path.parent != Path(".") and path.parent.is_dir()):
        raise ServesimError(f"model config {str(path)!r} does not exist")
    close = difflib.get_close_matches(_normal(text), list(_aliases()), n=5, cutoff=0.5)
    near = sorted({_aliases()[c] for c in close})
    raise ServesimError(f"unknown model {text!r}" + (f"; closest: {', '.join(near)}" if near else "")
                        + f"; known models: {', '.join(model_names())} (or pass a path to a Hugging Face config.json; "
                        "nothing is downloaded)")


# a quantized variant's id suffix -> the quantization_config its checkpoints carry (typical recipe)
ID_QUANTIZATION = {"fp8": {"quant_method": "fp8"}, "awq": {"quant_method": "awq", "bits": 4, "group_size": 128},
                   "gptq-int4": {"quant_method": "gptq", "bits": 4, "group_size": 128},
                   "gptq-int8": {"quant_method": "gptq", "bits": 8, "group_size": 128},
                   "int4": {"quant_method": "gptq", "bits": 4, "group_size": 128},
                   "int8": {"quant_method": "gptq", "bits": 8, "group_size": 128},
                   "gptq": {"quant_method": "gptq", "bits": 4, "group_size": 128}}


def _id_quantization(text: str) -> tuple[str, dict] | None:
    """The quantization a Hugging Face id's variant suffix names (`-FP8`, `-AWQ`, `-GPTQ-Int4`)."""
    low = text.strip().lower()
    for suffix in sorted(ID_QUANTIZATION, key=len, reverse=True):
        if re.search(rf"-{re.escape(suffix)}(-\w+)?$", low):
            return suffix, ID_QUANTIZATION[suffix]
    return None


def _json_kind(data) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(data), "null")


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ServesimError(f"{path}: not UTF-8 text (byte {exc.start}); {what} is a UTF-8 JSON file") from None
    except json.JSONDecodeError as exc:
        raise ServesimError(f"{path}: not valid JSON: {exc}") from None
    except OSError as exc:
        raise ServesimError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise ServesimError(f"{path}: {what} must be a JSON object, not a JSON {_json_kind(data)}")
    return data


def load_model(name_or_path: str | Path, *, allow_unknown_architecture: bool = False) -> ModelSpec:
    """A catalog name, a Hugging Face id of a catalog model, a config.json path, or a folder
    holding config.json. A ModelOpt export's hf_quant_config.json beside the config is read as its
    quantization; a catalog id with a quantized variant's suffix (`-FP8`, `-AWQ`, `-GPTQ-Int4`)
    gets that suffix's usual quantization, and the model's notes say it was inferred. Raises
    ServesimError for a missing file, invalid JSON, an unknown name (listing the closest catalog
    names) or a config the architecture table refuses."""
    path, name = config_path(name_or_path)
    config = _read_json(path, "a config.json")
    extra_notes: tuple[str, ...] = ()
    sidecar = path.parent / "hf_quant_config.json"
    if "quantization_config" not in config and path.parent != CONFIG_DIR and sidecar.is_file():
        config = {**config, "quantization_config": modelopt_config(_read_json(sidecar, "hf_quant_config.json"))}
    elif "quantization_config" not in config and path.parent == CONFIG_DIR and (q := _id_quantization(str(name_or_path))):
        config = {**config, "quantization_config": q[1]}
        extra_notes = (f"quantization inferred from the id's '-{q[0]}' suffix ({q[1]['quant_method']}"
                       + (f" int{q[1]['bits']}, group {q[1]['group_size']}" if "bits" in q[1] else "")
                       + "); pass the checkpoint's config.json for its exact quantization_config",)
    try:
        spec = spec_from_config(config, name=name, origin=str(path), allow_unknown=allow_unknown_architecture)
        return dataclasses.replace(spec, notes=extra_notes + spec.notes) if extra_notes else spec
    except ServesimError:
        raise
    except ValueError as exc:
        raise ServesimError(f"{path}: {exc}") from None
