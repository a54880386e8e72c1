"""Load, default-fill and validate a configuration against the one schema.

The schema (`workflow/schemas/config.schema.yaml`) is the single source of truth for keys,
ranges, defaults and descriptions. Both the Snakefile and every CLI command go through
:func:`validate`, so a bad key fails the same way everywhere: before any work, with the key
and the allowed values in the message.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from dance.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "workflow" / "config" / "default.yaml"


def load_schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _fill_defaults(instance: Any, schema: dict) -> None:
    """Insert schema defaults for missing keys, recursing into objects (in place)."""
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)


def _key_path(error: jsonschema.ValidationError) -> str:
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def _allowed(schema: dict) -> str:
    """Describe what a schema node allows, for error messages."""
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if schema.get("type") == "array" and "enum" in schema.get("items", {}):
        return "a list of " + ", ".join(json.dumps(v) for v in schema["items"]["enum"])
    kind = schema.get("type", "")
    text = kind if isinstance(kind, str) else " or ".join(kind)
    bounds = [f"{sym} {schema[word]}" for word, sym in
              (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
               ("exclusiveMaximum", "<")) if word in schema]
    if bounds:
        text += " " + " and ".join(bounds)
    return text or "see the schema"


def _message(error: jsonschema.ValidationError) -> str:
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        msgs = []
        for key in unknown:
            full = f"{where}.{key}" if where != "<top level>" else key
            hint = difflib.get_close_matches(key, allowed, n=1)
            tip = f" (did you mean '{hint[0]}'?)" if hint else ""
            msgs.append(f"unknown config key '{full}'{tip}; allowed keys here: {', '.join(allowed)}")
        return "; ".join(msgs)
    node = error.schema
    desc = node.get("description", "")
    got = json.dumps(error.instance) if not isinstance(error.instance, dict) else "a mapping"
    text = f"config key '{where}' = {got} is invalid: allowed is {_allowed(node)}"
    if error.validator not in ("enum", "type", "minimum", "maximum", "exclusiveMinimum",
                               "exclusiveMaximum"):
        text += f" ({error.message})"
    if desc:
        text += f". {desc}"
    return text


def validate(raw: dict | None) -> dict:
    """Return a validated copy of `raw` with every default filled in.

    Raises ConfigError naming each offending key and what it allows.
    """
    cfg = copy.deepcopy(raw or {})
    if not isinstance(cfg, dict):
        raise ConfigError("the config must be a mapping of keys to values")
    _refuse_non_finite(cfg)
    schema = load_schema()
    _fill_defaults(cfg, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        # The deepest, most specific message for each key path.
        seen: dict[str, str] = {}
        for err in errors:
            best = jsonschema.exceptions.best_match([err])
            seen.setdefault(_key_path(best) + err.validator, _message(best))
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(seen.values()))
    _check_cross_keys(cfg)
    return cfg


def _refuse_non_finite(node: Any, where: str = "") -> None:
    """No key takes infinity or NaN (YAML's .inf/.nan): they pass every range check of the
    schema (a comparison with NaN is always false) and train to NaN silently."""
    if isinstance(node, dict):
        for key, value in node.items():
            _refuse_non_finite(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _refuse_non_finite(value, f"{where}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"config key '{where}' = {node} is invalid: allowed is a finite number")


def _check_cross_keys(cfg: dict) -> None:
    """Rules that involve more than one key (the schema cannot say them)."""
    ds = cfg["dataset"]
    if ds["name"] != "synthetic" and not ds["root"]:
        raise ConfigError(
            f"config key 'dataset.root' must be the folder of the {ds['name']} videos and split "
            f"files when 'dataset.name' is {ds['name']!r} (it is null)")
    syn = ds["synthetic"]
    if syn["radius_min"] > syn["radius_max"]:
        raise ConfigError(
            f"config key 'dataset.synthetic.radius_min' ({syn['radius_min']}) must not exceed "
            f"'dataset.synthetic.radius_max' ({syn['radius_max']})")


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (plain YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first at line {seen[key] + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """YAML text (safe, duplicate keys refused); `where` names its source in the error."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None


def read_config_file(path: str | Path) -> dict:
    """One config file as a mapping, every way it can be unreadable named with its path."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a YAML/JSON file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror})") from None
    raw = parse_yaml(text, f"config file {path}") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return raw


def resolve(config_files: Iterable[str | Path] = (), overrides: dict | None = None, *,
            with_default: bool = True) -> dict:
    """The one way a config is put together, for the CLI and the workflow alike: default.yaml,
    then each file in order merged over it (as Snakemake's ``--configfile`` does), then the
    `overrides`, validated. ``with_default=False`` drops the first layer (Snakemake's
    ``--replace-workflow-config``)."""
    files = [Path(f) for f in config_files]
    if with_default:
        files = [DEFAULT_CONFIG, *(f for f in files if f.resolve() != DEFAULT_CONFIG.resolve())]
    raw: dict = {}
    for path in files:
        raw = merge(raw, read_config_file(path))
    return validate(merge(raw, overrides or {}))


def load(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """`path` (if any) layered over default.yaml, then `overrides`: :func:`resolve`."""
    return resolve([path] if path else [], overrides)


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge: `update` wins; nested mappings are merged, not replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict:
    """Turn 'train.epochs=3' into {'train': {'epochs': 3}} (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: {key!r} is not a key (like train.epochs)")
    node: dict = {}
    cursor = node
    for part in parts[:-1]:
        cursor[part] = {}
        cursor = cursor[part]
    cursor[parts[-1]] = parse_yaml(value, f"the value of override {key.strip()}={value}")
    return node


def typed_cli_values(overrides: Any) -> Any:
    """Snakemake's ``--config key=value`` types a top-level value but leaves every value
    inside a nested one (``train={epochs: 1}``) a string: give those strings the type their
    text reads as, the way Snakemake types top-level values (int, float, bool, YAML)."""
    if isinstance(overrides, dict):
        return {k: typed_cli_values(v) for k, v in overrides.items()}
    if isinstance(overrides, list):
        return [typed_cli_values(v) for v in overrides]
    if not isinstance(overrides, str):
        return overrides
    for parse in (int, float):
        try:
            return parse(overrides)
        except ValueError:
            pass
    if overrides.lower() in ("true", "false"):
        return overrides.lower() == "true"
    try:
        return yaml.safe_load(overrides)
    except yaml.YAMLError:
        return overrides


def lookup(cfg: dict, dotted: str) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``; None where a part is missing."""
    node: Any = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def fingerprint(cfg: dict, keys: Iterable[str] | None = None) -> str:
    """Stable short hash of the config (or of some sections or dotted keys of it).

    Checkpoints store it, so a checkpoint made under another config is refused on resume,
    and Snakemake rules use it as a params trigger so that only affected rules re-run.
    """
    part = cfg if keys is None else {k: lookup(cfg, k) for k in sorted(keys)}
    blob = json.dumps(part, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def write_resolved(cfg: dict, folder: str | Path) -> Path:
    """Write the validated config to `folder/config-<fingerprint>.yaml` (content-addressed,
    so concurrent or repeated workflow starts agree on it) and return the path."""
    from dance.io import write_text

    path = Path(folder) / f"config-{fingerprint(cfg)}.yaml"
    if not path.exists():
        write_text(path, yaml.safe_dump(cfg, sort_keys=True))
    return path
