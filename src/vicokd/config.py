"""The workflow configuration's one source of keys, types and defaults: its JSON schema.

workflow/schemas/config.schema.yaml declares every key with its type and default. This module
reads it for everyone:

- `check_config(config, files, command_line)`: what the Snakefile runs first. A key given twice
  in one config file (YAML would silently keep the last) is a one-line VicokdError naming the
  file and the key; an unknown key in any section likewise, with the closest valid one and the
  config file (or `--config`) that has it; a wrong type or range, or a number that is not
  finite (.nan, .inf), likewise; then the defaults are filled in, so every rule sees every key,
  and the config is made canonical (keys sorted, whole numbers of `number` keys as floats): a
  rule's params are compared by their repr, so the same settings written in another key order
  or as `1` for `1.0` must not rerun anything.
- `fill(section, values)`: one section's values over its defaults (for library entry points
  that are also called with partial sections, e.g. by tests).
- `load_config_file(path)`: one config file, refusing duplicated keys.
- `default("model.frames")`: one key's default, for the dataclass configs' field defaults, so
  that a dataclass, the schema and config.yaml cannot disagree.
- `typed(Dataclass, section)`: a dataclass config from a section, its fields' defaults (the
  schema's) for the keys not given: below the entry points the library takes typed configs.
- `speed_keys(section)` / `without_speed_keys(section, values)`: the keys the schema marks
  `x-speed: true` (threads, loader workers, caches, pinned memory, device placement): options
  that change how fast a job runs, never its numbers, so they are neither rule params (a change
  reruns nothing) nor part of a checkpoint's fingerprint.

Plain Python and PyYAML only: the Snakefile imports it at every parse.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import VicokdError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@lru_cache(maxsize=1)
def schema() -> dict:
    """The parsed schema (cached; callers must not change it)."""
    with open(SCHEMA_PATH) as f:
        return yaml.safe_load(f)


def _node(path: str) -> dict:
    """The schema of a dotted key path ("model.vit")."""
    node = schema()
    for part in path.split(".") if path else []:
        try:
            node = node["properties"][part]
        except KeyError:
            raise KeyError(f"{SCHEMA_PATH.name} declares no key '{path}'") from None
    return node


def _defaults_of(node: dict):
    """The default a schema node gives: its own `default`, filled with the defaults of its
    properties when it is an object."""
    value = copy.deepcopy(node.get("default"))
    props = node.get("properties")
    if props is None:
        return value
    value = {} if value is None else value
    for key, sub in props.items():
        if key not in value and "default" in sub:
            value[key] = _defaults_of(sub)
    return value


def default(path: str):
    """The schema's default of one key (a copy), e.g. default("teacher.cache")."""
    node = _node(path)
    if "default" not in node and "properties" not in node:
        raise KeyError(f"{SCHEMA_PATH.name}: key '{path}' has no default")
    return _defaults_of(node)


def _merge_defaults(node: dict, values):
    """`values` with every missing key of `node` set to its default (deeply, in place)."""
    props = node.get("properties")
    if not isinstance(values, dict):
        return values
    if props is not None:
        for key, sub in props.items():
            if key in values:
                _merge_defaults(sub, values[key])
            elif "default" in sub:
                values[key] = _defaults_of(sub)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in values.items():
            if props is None or key not in props:
                _merge_defaults(extra, value)
    return values


def typed(cls, values: dict | None):
    """`cls(**values)` for the keys `cls` declares (others are another reader's); the rest take
    the field defaults, which are the schema's."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (values or {}).items() if k in names})


def speed_keys(section: str) -> dict:
    """The keys of `section` that change speed, not results ({key: True}, or {key: nested}
    for a nested section that has some), as the schema marks them (`x-speed: true`)."""
    def walk(node):
        out = {}
        for key, sub in (node.get("properties") or {}).items():
            if sub.get("x-speed"):
                out[key] = True
            elif sub.get("properties"):
                inner = walk(sub)
                if inner:
                    out[key] = inner
        return out
    return walk(_node(section))


def without_speed_keys(section: str, values: dict) -> dict:
    """A copy of one section's `values` without its speed keys: what a rule's params and a
    checkpoint's fingerprint hold."""
    def strip(value, marks):
        if not isinstance(value, dict):
            return copy.deepcopy(value)
        return {k: strip(v, marks.get(k, {})) for k, v in value.items() if marks.get(k) is not True}
    return strip(dict(values), speed_keys(section))


def with_speed_keys(section: str, values: dict, source: dict) -> dict:
    """A copy of `values` (a rule's params of one section) with the speed keys that `source`
    (the same section of the whole config) sets: how a job gets its speed options."""
    def merge(value, src, marks):
        out = copy.deepcopy(dict(value))
        for key, mark in marks.items():
            if key not in src:
                continue
            if mark is True:
                out[key] = copy.deepcopy(src[key])
            elif isinstance(src[key], dict):
                out[key] = merge(out.get(key, {}), src[key], mark)
        return out
    return merge(values, source or {}, speed_keys(section))


def fill(section: str, values: dict | None) -> dict:
    """A copy of one section's `values` with the schema's defaults for every key not given."""
    return _merge_defaults(_node(section), copy.deepcopy(dict(values or {})))


def load_config_file(path) -> dict | None:
    """A config file's contents (YAML, or JSON), refusing a key given twice in one mapping:
    PyYAML (and Snakemake) keep the last silently, e.g. a second `dataset:` would replace the
    first."""
    text = Path(path).read_text()
    try:
        _refuse_duplicates(path, yaml.compose(text, Loader=yaml.SafeLoader), [])
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        try:                               # Snakemake reads JSON that YAML may not (tabs)
            return json.loads(text, object_pairs_hook=lambda pairs: _unique_pairs(path, pairs))
        except json.JSONDecodeError:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise VicokdError(f"{path}: not valid YAML{where} ({getattr(exc, 'problem', None) or exc})") from None


def _refuse_duplicates(path, node, keys: list, seen: set | None = None) -> None:
    seen = set() if seen is None else seen
    if node is None or id(node) in seen:     # an alias repeats a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key != "<<":
                if key in lines:
                    raise VicokdError(f"{path}: config key '{_dotted(keys + [key])}' is given twice "
                                      f"(lines {lines[key]} and {key_node.start_mark.line + 1}); "
                                      f"keep one")
                lines[key] = key_node.start_mark.line + 1
            _refuse_duplicates(path, value_node, keys + [key], seen)
    elif isinstance(node, yaml.SequenceNode):
        for k, item in enumerate(node.value):
            _refuse_duplicates(path, item, keys + [k], seen)


def _unique_pairs(path, pairs) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise VicokdError(f"{path}: config key '{key}' is given twice; keep one")
        out[key] = value
    return out


COMMAND_LINE = "--config"


def _holds(node, keys) -> bool:
    """Whether the nested mappings (and lists) `node` have the key path `keys`."""
    for key in keys:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return False
    return True


def _where(files, keys: list, command_line=None) -> str:
    """What sets the key path `keys` in the merged config: the command line's --config, which
    wins over every file, else the last config file (the one that wins) that has it, else
    "config"."""
    if command_line and _holds(command_line, keys):
        return COMMAND_LINE
    found = "config"
    for name in files or ():
        try:
            node = load_config_file(name)
        except (OSError, VicokdError):
            continue
        if _holds(node, keys):
            found = str(name)
    return found


def _non_finite(values, path: list):
    """Yield (key path, value) of every float that is NaN or infinite (.nan, .inf in YAML:
    JSON Schema's `number` accepts them)."""
    if isinstance(values, dict):
        for key, value in values.items():
            yield from _non_finite(value, path + [key])
    elif isinstance(values, list):
        for k, value in enumerate(values):
            yield from _non_finite(value, path + [k])
    elif isinstance(values, float) and not math.isfinite(values):
        yield path, values


def _unknown_keys(node: dict, values, path: list[str]):
    """Yield (key path, closest valid key) of every key the schema does not declare."""
    if not isinstance(values, dict):
        return
    props = node.get("properties")
    extra = node.get("additionalProperties")
    for key, value in values.items():
        if props is not None and key in props:
            yield from _unknown_keys(props[key], value, path + [key])
        elif isinstance(extra, dict):
            yield from _unknown_keys(extra, value, path + [key])
        elif props is not None and extra is not True:
            close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.0)
            yield path + [str(key)], (close[0] if close else None)


def _dotted(keys) -> str:
    return ".".join(str(k) for k in keys) or "(top level)"


def check_config(config: dict, files=(), command_line=None) -> dict:
    """Reject duplicated keys, unknown keys and wrong values in one line each, then fill the
    defaults (in place).

    `files`: the config files merged into `config`, to name the one that holds a fault;
    `command_line`: what `--config` set (it wins over every file)."""
    import jsonschema  # a dependency of Snakemake; imported here to keep `default` light

    for name in files or ():
        try:
            load_config_file(name)               # a duplicated key is refused here
        except OSError:
            continue
    if not isinstance(config, dict):
        raise VicokdError(f"config: expected a mapping of sections, got {type(config).__name__}")
    for keys, close in _unknown_keys(schema(), config, []):
        hint = f"; the closest valid key is '{_dotted(keys[:-1] + [close])}'" if close else ""
        raise VicokdError(f"{_where(files, keys, command_line)}: unknown config key '{_dotted(keys)}'{hint} "
                          f"(every key: workflow/schemas/{SCHEMA_PATH.name})")
    _merge_defaults(schema(), config)
    for keys, value in _non_finite(config, []):
        raise VicokdError(f"{_where(files, keys, command_line)}: config key '{_dotted(keys)}': "
                          f"{value} is not a finite number")
    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        keys = list(error.absolute_path)
        where = _where(files, keys, command_line) if keys else "config"
        hint = ""
        if where == COMMAND_LINE and error.validator == "type" and isinstance(error.instance, str):
            hint = (" (Snakemake reads the values inside a --config mapping as text: set it in "
                    "a --configfile)")
        raise VicokdError(f"{where}: config key '{_dotted(keys)}': {_short(error.message)}{hint}")
    return canonical(config)


def canonical(config: dict, node: dict | None = None) -> dict:
    """`config` in place with every mapping's keys sorted and the whole numbers of keys the
    schema types `number` as floats; lists keep their order (it is meaningful)."""
    node = schema() if node is None else node
    _canonical(node, config)
    return config


def _canonical(node: dict, value):
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        value.clear()
        for key, sub in items:
            sub_node = props.get(key, extra if isinstance(extra, dict) else {})
            value[key] = _canonical(sub_node, sub)
        return value
    if isinstance(value, list):
        items = node.get("items", {})
        return [_canonical(items if isinstance(items, dict) else {}, v) for v in value]
    types = node.get("type")
    types = [types] if isinstance(types, str) else (types or [])
    if "number" in types and "integer" not in types and isinstance(value, int) \
            and not isinstance(value, bool):
        return float(value)
    return value


def _short(message: str, limit: int = 200) -> str:
    """A validation message on one line, cut to `limit` characters."""
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
