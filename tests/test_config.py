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


# --- one resolution for both entry points, and input that is not a config (issue 19) --------

def _snakemake_resolved(tmp_path, configfile=None, *entries: str) -> dict:
    """The config the workflow resolves (the file it hands every step), from a dry run with
    `configfile` and the `--config` `entries`."""
    work = tmp_path / "work"
    files = ["--configfile", str(configfile)] if configfile else []
    proc = run([sys.executable, "-m", "snakemake", "-n", "--quiet", "--cores", "1", *files,
                "--config", *entries, f"work_dir={work}", f"results_dir={tmp_path / 'results'}",
                f"figures_dir={tmp_path / 'figures'}"], cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (resolved,) = (work / "config").glob("config-*.yaml")
    return yaml.safe_load(resolved.read_text())


@pytest.mark.parametrize("name", ["default", "smoke", "paper"])
def test_cli_and_workflow_resolve_every_shipped_config_alike(tmp_path, name):
    # Before, the CLI read `--config X` alone while Snakemake layered X over default.yaml:
    # for smoke.yaml 12 keys differed (ava.lambda 1.0 vs 30, ...).
    path = REPO / "workflow/config" / f"{name}.yaml"
    dirs = {"work_dir": str(tmp_path / "work"), "results_dir": str(tmp_path / "results"),
            "figures_dir": str(tmp_path / "figures")}
    workflow = _snakemake_resolved(tmp_path, path)
    sets = [a for k, v in dirs.items() for a in ("--set", f"{k}={v}")]
    cli = dance_cli("validate-config", "--config", str(path), *sets)
    assert cli.returncode == 0, cli.stderr
    assert yaml.safe_load(cli.stdout) == workflow == config_mod.load(path, dirs)


def test_nested_workflow_config_values_get_their_types(tmp_path):
    # Snakemake leaves the values inside `--config "train={epochs: 1}"` strings ("1"), which
    # the schema refused; they now read as YAML would.
    cfg = _snakemake_resolved(tmp_path, None, "train={epochs: 1, lr: 1e-3}")
    assert cfg["train"]["epochs"] == 1 and cfg["train"]["lr"] == 0.001
    assert cfg["train"]["batch_size"] == config_mod.load()["train"]["batch_size"]  # merged
    assert config_mod.typed_cli_values({"a": {"b": "true", "c": "c3d", "d": ["1", "x"]}}) == \
        {"a": {"b": True, "c": "c3d", "d": [1, "x"]}}


def _cli_fails_naming(proc, *names: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith("dance validate-config: error: "), proc.stderr[-2000:]
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)


@pytest.mark.parametrize("override, names", [
    ("train.lr=.inf", ["'train.lr'", "inf", "finite"]),
    ("train.lr=.nan", ["'train.lr'", "nan", "finite"]),
    ("seed=281474976710656", ["'seed'", "2147483647"]),            # 2^48
    ("models=[c3d", ["override models=[c3d", "not valid YAML"]),
    ("seed=\udcff", ["override seed=", "not valid YAML"]),          # a non-UTF-8 byte
    ("=3", ["'=3'", "not a key"]),
])
def test_bad_override_stops_with_one_line_naming_it(override, names):
    _cli_fails_naming(dance_cli("validate-config", "--set", override), *names)


def test_config_with_a_key_given_twice_is_refused_by_both_entry_points(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("seed: 1\ntrain:\n  epochs: 2\n  epochs: 3\n")
    _cli_fails_naming(dance_cli("validate-config", "--config", str(path)),
                      str(path), "'epochs' is given twice")
    proc = run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                "--configfile", str(path)], cwd=REPO, timeout=300)
    assert proc.returncode == 1 and "'epochs' is given twice" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("content, names", [
    (b"seed: 1\nname: \xff\xfe\n", ["not UTF-8"]),
    (None, ["is a folder"]),
    (b"- a list\n", ["must hold a mapping"]),
])
def test_unreadable_config_file_is_named(tmp_path, content, names):
    path = tmp_path / "cfg.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    _cli_fails_naming(dance_cli("validate-config", "--config", str(path)), str(path), *names)


def test_config_comments_say_what_a_key_does_in_two_lines_without_dated_results():
    """A config comment explains the key and points to the docs for the evidence; the trial
    history (dated numbers, hosts) lives in docs/, where it cannot go stale in a config."""
    import re

    from conftest import REPO

    for path in sorted((REPO / "workflow" / "config").glob("*.yaml")):
        lines = path.read_text().splitlines()
        header = next(i for i, ln in enumerate(lines) if not ln.lstrip().startswith("#"))
        run = 0
        for no, line in enumerate(lines[header:], header + 1):
            comment = line.split("#", 1)[1] if "#" in line else ""
            assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\b(Intel|AMD|EPYC|Xeon)\b", comment), \
                f"{path.name}:{no}: dated or host-specific result in a comment: {line.strip()}"
            run = run + 1 if line.lstrip().startswith("#") else 0
            assert run <= 2, f"{path.name}:{no}: a key's comment is longer than 2 lines"
