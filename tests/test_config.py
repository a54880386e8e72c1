"""The one config schema: defaults, documentation, and errors that name the key."""

from __future__ import annotations

import sys

import pytest
import yaml

from dance import config as config_mod
from dance.errors import ConfigError

from conftest import REPO, dance_cli, run


def _walk(schema: dict, path: str = ""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _walk(sub, f"{path}{key}.")


def test_every_key_is_documented_with_type_and_default():
    schema = config_mod.load_schema()
    for key, sub in _walk(schema):
        assert sub.get("description"), f"{key} has no description"
        assert "default" in sub, f"{key} has no default"
        assert "type" in sub or "enum" in sub, f"{key} has no type"


def test_defaults_fill_missing_keys_and_are_valid():
    cfg = config_mod.validate({})
    assert cfg["results_dir"] == "results" and cfg["figures_dir"] == "figures"
    assert cfg["device"] == "auto"
    assert cfg["dataset"]["synthetic"]["train_clips"] == 2000
    assert cfg["train"]["epochs"] >= 1


@pytest.mark.parametrize("name", ["default", "smoke", "paper"])
def test_shipped_configs_validate(name):
    cfg = config_mod.load(REPO / "workflow" / "config" / f"{name}.yaml")
    assert set(cfg["models"]) <= {"c3d", "r3d18"}


@pytest.mark.parametrize("raw, must_say", [
    ({"device": "gpu"}, ["'device'", '"auto"', '"cpu"', '"cuda"']),
    ({"train": {"lrr": 0.1}}, ["unknown config key 'train.lrr'", "did you mean 'lr'"]),
    ({"dataset": {"frames": 1}}, ["'dataset.frames'", ">= 2"]),
    ({"train": {"lr": "fast"}}, ["'train.lr'", "number"]),
    ({"models": ["x3d"]}, ["'models[0]'", '"c3d"', '"r3d18"']),
    ({"bogus": 1}, ["unknown config key 'bogus'", "allowed keys"]),
    ({"dataset": {"name": "ucf101"}}, ["'dataset.root'", "ucf101"]),
    ({"dataset": {"synthetic": {"radius_min": 0.2, "radius_max": 0.1}}},
     ["'dataset.synthetic.radius_min'", "must not exceed", "'dataset.synthetic.radius_max'"]),
])
def test_invalid_values_name_the_key_and_what_is_allowed(raw, must_say):
    with pytest.raises(ConfigError) as err:
        config_mod.validate(raw)
    for text in must_say:
        assert text in str(err.value)


def test_override_parsing_and_merge():
    over = config_mod.merge(config_mod.parse_override("train.epochs=3"),
                            config_mod.parse_override("dataset.synthetic.noise_std=0.2"))
    cfg = config_mod.validate(over)
    assert cfg["train"]["epochs"] == 3
    assert cfg["dataset"]["synthetic"]["noise_std"] == 0.2
    assert cfg["dataset"]["synthetic"]["train_clips"] == 2000  # merged, not replaced
    with pytest.raises(ConfigError):
        config_mod.parse_override("train.epochs")


def test_fingerprint_tracks_only_the_sections_asked_for():
    a = config_mod.validate({})
    b = config_mod.validate({"figures_dir": "elsewhere"})
    assert config_mod.fingerprint(a, ["train"]) == config_mod.fingerprint(b, ["train"])
    assert config_mod.fingerprint(a) != config_mod.fingerprint(b)


def test_cli_bad_config_exits_2_without_traceback():
    proc = dance_cli("validate-config", "--set", "train.epochs=-1")
    assert proc.returncode == 2
    assert "'train.epochs'" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_missing_config_file_names_it(tmp_path):
    missing = tmp_path / "nope.yaml"
    proc = dance_cli("validate-config", "--config", str(missing))
    assert proc.returncode == 2 and str(missing) in proc.stderr


def test_cli_prints_resolved_config():
    proc = dance_cli("validate-config", "--set", "seed=7")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["seed"] == 7


def test_workflow_refuses_bad_config_before_any_work(tmp_path):
    proc = run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                "--config", f"work_dir={tmp_path}/w", f"results_dir={tmp_path}/r",
                "device=gpu"])
    assert proc.returncode != 0
    assert "'device'" in proc.stderr + proc.stdout
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()


def test_paper_config_passes_a_dry_run(tmp_path):
    proc = run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
                "workflow/config/paper.yaml", "--config", f"work_dir={tmp_path}/w",
                f"results_dir={tmp_path}/r", f"figures_dir={tmp_path}/f"])
    assert proc.returncode == 0, proc.stderr[-2000:]
