"""The config schema is the one place of keys, types and defaults: unknown keys and wrong types
are one-line errors naming the key (and the closest valid one), the dataclass configs and
config.yaml agree with its defaults, and every optional key has one."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO, prepare_workdir, run_snakemake
from vicokd.config import check_config, default, fill, schema, typed
from vicokd.distill import LossConfig
from vicokd.errors import VicokdError
from vicokd.masks.detector import DetectorConfig
from vicokd.masks.masks import MasksConfig
from vicokd.model_configs import CONFIG_CLASSES, model_config
from vicokd.synthetic.synthesize import SyntheticConfig
from vicokd.train import TrainConfig

CONFIG = REPO / "config.yaml"


def load(path):
    return yaml.safe_load(path.read_text())


def embedded() -> dict:
    return copy.deepcopy(load(CONFIG))


@pytest.mark.parametrize("section, key, unknown, closest", [
    ("teacher", {"epoch": 3}, "teacher.epoch", "teacher.epochs"),
    ("masks", {"weight": "x.pt"}, "masks.weight", "masks.weights"),
    ("model", {"vit": {"layer": 2}}, "model.vit.layer", "model.vit.layers"),
    ("student", {"weights": {"fdd": 1.0}}, "student.weights.fdd", "student.weights.fd"),
    ("tacher", {"epochs": 3}, "tacher", "teacher"),
])
def test_an_unknown_key_is_one_line_naming_it_and_the_closest(tmp_path, section, key, unknown,
                                                              closest):
    extra = tmp_path / "mine.yaml"
    extra.write_text(yaml.safe_dump({section: key}))
    config = embedded()
    config[section] = {**config.get(section, {}), **key}
    with pytest.raises(VicokdError) as err:
        check_config(config, [str(CONFIG), str(extra)])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{extra}:")
    assert f"unknown config key '{unknown}'; the closest valid key is '{closest}'" in msg


@pytest.mark.parametrize("section, values, fault", [
    ("teacher", {"epochs": "3"}, "'3' is not of type 'integer'"),
    ("decode", {"size": 4}, "4 is less than the minimum of 8"),
    ("teacher", {"supervision": "frames"}, "'frames' is not one of"),
    ("split", {"allow_empty_class": "yes"}, "is not of type 'boolean'"),
])
def test_a_wrong_value_is_one_line_naming_the_key(section, values, fault):
    config = embedded()
    config[section] = {**config[section], **values}
    with pytest.raises(VicokdError) as err:
        check_config(config, [str(CONFIG)])
    msg = str(err.value)
    key = f"{section}.{list(values)[0]}"
    assert "\n" not in msg and f"'{key}'" in msg and fault in msg, msg


def test_check_fills_every_default_and_keeps_the_given_values():
    config = {"dataset": load(CONFIG)["dataset"], "teacher": {"epochs": 3}}
    check_config(config)
    assert config["teacher"]["epochs"] == 3
    assert config["teacher"]["supervision"] == "frame" and config["teacher"]["cache"] is True
    assert config["model"]["vit"]["layers"] == default("model.vit.layers")
    assert config["student"]["weights"] == {"fd": 1.0, "ld": 1.0, "vc": 1.0, "modal": 1.0,
                                            "dual": 1.0, "vis": 1.0}
    assert set(config) == set(schema()["properties"])


@pytest.mark.parametrize("path", [CONFIG, REPO / "config" / "paper.yaml",
                                  REPO / "config" / "mm-office.yaml",
                                  REPO / "config" / "study.yaml",
                                  REPO / "tests" / "config" / "tiny.yaml"],
                         ids=lambda p: p.name)
def test_every_shipped_config_passes(path):
    config = embedded()
    for section, values in load(path).items():
        config[section] = {**config.get(section, {}), **values}
    check_config(config, [str(CONFIG), str(path)])


def test_config_yaml_restates_the_schema_defaults_and_changes_none():
    """config.yaml is the defaults written out (plus the dataset, which has none)."""
    def compare(values, path):
        for key, value in values.items():
            here = f"{path}.{key}" if path else key
            if isinstance(value, dict) and "properties" in _node(here):
                compare(value, here)
            else:
                assert value == default(here), f"config.yaml {here}: {value!r} != schema {default(here)!r}"

    config = load(CONFIG)
    config.pop("dataset")
    compare(config, "")


def _node(path):
    node = schema()
    for part in path.split("."):
        node = node["properties"][part]
    return node


def _keys(node, path=""):
    for key, sub in node.get("properties", {}).items():
        yield f"{path}{key}", sub, key in node.get("required", ())
        yield from _keys(sub, f"{path}{key}.")


def test_every_optional_key_has_a_default():
    """Adding a key is declaring it in the schema with its default: nothing else supplies one."""
    missing = [path for path, sub, required in _keys(schema())
               if not required and "default" not in sub and not path.startswith("dataset.")]
    assert not missing, missing


def test_the_dataclass_configs_take_the_schema_defaults():
    assert LossConfig() == LossConfig.of_student(fill("student", {}))
    assert LossConfig().tau == default("student.tau")
    assert MasksConfig() == typed(MasksConfig, {}) and MasksConfig().conf == default("masks.conf")
    assert DetectorConfig() == typed(DetectorConfig, {})
    assert SyntheticConfig() == SyntheticConfig.from_section({})
    assert TrainConfig(epochs=1, lr=1.0).workers == default("teacher.workers")
    for backbone, cls in CONFIG_CLASSES.items():
        from_schema = model_config(fill("model", {}), backbone, 3, mel_bins=default("audio.mel_bins"),
                                   audio_length=38)
        assert from_schema == cls(num_classes=3), backbone
        assert from_schema.frames == default("model.frames")
        assert from_schema.vit.patch_size == default("model.patch_size")
        assert from_schema.ast.patch_size == default("model.ast.patch_size")
    # the teacher's and the students' training keys share their defaults (TrainConfig's)
    for key in ("weight_decay", "batch_size", "workers", "cache", "threads", "lambda_seq"):
        assert default(f"teacher.{key}") == default(f"student.{key}"), key


def test_fill_gives_a_partial_section_every_key():
    section = fill("model", {"frames": 4, "vit": {"layers": 3}})
    assert section["frames"] == 4 and section["vit"]["layers"] == 3
    assert section["vit"]["heads"] == default("model.vit.heads")
    assert section["normalize"] == default("model.normalize")


def test_snakemake_stops_on_a_config_typo_with_one_line(tmp_path):
    work = prepare_workdir(tmp_path)
    bad = tmp_path / "typo.yaml"
    bad.write_text("teacher: {epoch: 3}\n")
    proc = run_snakemake(work, "results/table1.csv", config=bad, extra_args=("-n",), check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"vicokd: error: {bad}: unknown config key 'teacher.epoch'; the closest "
                      "valid key is 'teacher.epochs' (every key: "
                      "workflow/schemas/config.schema.yaml)"], proc.stderr
    assert "Traceback" not in proc.stderr


def _reordered(value):
    """The same mapping with every level's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    return value


def test_key_order_and_whole_numbers_do_not_change_the_checked_config():
    """Rules' params are compared by repr: reordering keys, or 1 for 1.0, must not rerun."""
    a = check_config(embedded())
    other = _reordered(embedded())
    other["teacher"]["lambda_seq"] = 1          # an int where the schema says number
    other["model"]["dropout"] = 0.1
    b = check_config(other)
    for section in a:
        assert repr(a[section]) == repr(b[section]), section
    assert list(a["model"]) == sorted(a["model"]) and repr(b["teacher"]["lambda_seq"]) == "1.0"
    assert a["dataset"]["classes"] == load(CONFIG)["dataset"]["classes"]   # lists keep order


# --- issue 22: duplicated keys, numbers that are not finite, --config, negative seeds

DUPLICATES = {
    "top level": ("dataset:\n  require_audio: false\nteacher:\n  epochs: 3\ndataset:\n  root: x\n",
                  "config key 'dataset' is given twice (lines 1 and 5)"),
    "nested": ("teacher:\n  lr: 0.001\n  epochs: 3\n  lr: 0.01\n",
               "config key 'teacher.lr' is given twice (lines 2 and 4)"),
    "in a list": ("experiments:\n  homes: [home1]\n  seeds: [0]\nmodel:\n  vit: {layers: 2, layers: 3}\n",
                  "config key 'model.vit.layers' is given twice (lines 5 and 5)"),
    "json": ('{"teacher": {"epochs": 3},\n\t"teacher": {"epochs": 4}}\n',
             "config key 'teacher' is given twice"),
}


@pytest.mark.parametrize("case", list(DUPLICATES))
def test_a_key_given_twice_in_a_config_file_is_one_line(tmp_path, case):
    """PyYAML keeps the last of two equal keys: a my.yaml with `dataset:` twice ran on the
    built-in synthetic homes without a word."""
    text, fault = DUPLICATES[case]
    mine = tmp_path / "mine.yaml"
    mine.write_text(text)
    with pytest.raises(VicokdError) as err:
        check_config(embedded(), [str(CONFIG), str(mine)])
    assert str(err.value) == f"{mine}: {fault}; keep one"


@pytest.mark.parametrize("section, key, value", [("teacher", "lr", ".nan"), ("decode", "fps", ".inf"),
                                                 ("student", "tau", "-.inf")])
def test_a_number_that_is_not_finite_is_one_line(tmp_path, section, key, value):
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"{section}:\n  {key}: {value}\n")
    config = embedded()
    config[section] = {**config[section], **load(mine)[section]}
    with pytest.raises(VicokdError) as err:
        check_config(config, [str(CONFIG), str(mine)])
    shown = {".nan": "nan", ".inf": "inf", "-.inf": "-inf"}[value]
    assert str(err.value) == f"{mine}: config key '{section}.{key}': {shown} is not a finite number"


def test_a_negative_seed_is_one_line_naming_the_file(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("experiments:\n  seeds: [-1]\n")
    config = embedded()
    config["experiments"] = {**config["experiments"], "seeds": [-1]}
    with pytest.raises(VicokdError) as err:
        check_config(config, [str(CONFIG), str(mine)])
    assert str(err.value) == f"{mine}: config key 'experiments.seeds.0': -1 is less than the minimum of 0"


def test_a_bad_config_value_is_blamed_on_the_command_line():
    """config.yaml holds decode.fps, but --config set the value that is wrong."""
    config = embedded()
    config["decode"] = {**config["decode"], "fps": ".inf"}    # --config decode={fps: .inf}: text
    with pytest.raises(VicokdError) as err:
        check_config(config, [str(CONFIG)], command_line={"decode": {"fps": ".inf"}})
    assert str(err.value).startswith("--config: config key 'decode.fps': '.inf' is not of type 'number' "
                                     "(Snakemake reads the values inside a --config mapping as text")
    config = embedded()
    config["teacher"] = {**config["teacher"], "epoch": 3}
    with pytest.raises(VicokdError, match="^--config: unknown config key 'teacher.epoch'"):
        check_config(config, [str(CONFIG)], command_line={"teacher": {"epoch": 3}})


@pytest.mark.parametrize("case", ["duplicate", "command line"])
def test_snakemake_stops_on_a_duplicated_key_or_a_bad_config_value_with_one_line(tmp_path, case):
    work = prepare_workdir(tmp_path)
    tiny = (REPO / "tests" / "config" / "tiny.yaml").read_text()   # decode: {fps: 2.5, size: 64}
    mine = tmp_path / "mine.yaml"
    mine.write_text(tiny)
    if case == "duplicate":
        mine.write_text(tiny + "\ndecode:\n  size: 32\n")
        extra, expected = ("-n",), f"vicokd: error: {mine}: config key 'decode' is given twice"
    else:                                 # --config takes every word up to the next option
        extra = ("--config", "decode={fps: .inf}", "-n")
        expected = "vicokd: error: --config: config key 'decode.fps': '.inf' is not of type 'number'"
    proc = run_snakemake(work, "results/table1.csv", config=mine, extra_args=extra, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(expected), proc.stderr
    assert "Traceback" not in proc.stderr
