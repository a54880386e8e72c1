"""Dense cost profile and the `profile` / `bench` commands end to end on a tiny config."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from dance import cli
from dance.errors import ConfigError
from dance.measure import energy, macs, memory, rapl
from dance.measure.bench import BENCH_COLUMNS, run_bench
from dance.measure.profile import cost_tables, profile_model
from dance.models import build_model
from dance.paths import Paths

from conftest import copy_trained, tiny_config


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def trained(tiny_baselines, tmp_path_factory) -> tuple[dict, Path]:
    """The session's tiny baselines of both models, with this module's bench settings; a
    config file for the CLI."""
    root = tmp_path_factory.mktemp("measure")
    cfg = copy_trained(tiny_baselines, root,
                       bench={"clips": 2, "warmup": 1, "repeats": 1, "threads": 1,
                              "energy_window_s": 0.2})
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return cfg, path


def test_cost_tables_presets_and_custom_override():
    cfg = tiny_config(Path("/nonexistent"))
    assert list(cost_tables(cfg["energy"])) == ["eyeriss65", "horowitz45"]
    cfg = tiny_config(Path("/nonexistent"), energy={
        "presets": ["horowitz45"],
        "custom_costs": {"name": "h45rf", "base": "horowitz45", "rf": 1, "rf_per_mac": 4}})
    tables = cost_tables(cfg["energy"])
    assert list(tables) == ["horowitz45", "h45rf"]
    assert tables["h45rf"]["rf"] == 1 and tables["h45rf"]["dram"] == 640
    assert tables["h45rf"]["unit"] == "pJ"
    replaced = cost_tables(tiny_config(Path("/nonexistent"), energy={
        "custom_costs": {"name": "eyeriss65", "dram": 100}})["energy"])
    assert list(replaced) == ["eyeriss65", "horowitz45"] and replaced["eyeriss65"]["dram"] == 100
    with pytest.raises(ConfigError):
        tiny_config(Path("/nonexistent"), energy={"custom_costs": {"dramm": 1}})


def test_profile_model_rows_totals_and_labels():
    model = build_model("r3d18", 5, width=0.125, frames=4, size=24)
    shape = (1, 3, 4, 24, 24)
    tables = cost_tables(tiny_config(Path("/nonexistent"))["energy"])
    rows, totals = profile_model(model, shape, tables)
    assert [r["layer"] for r in rows] == [r["layer"] for r in macs.dense_profile(model, shape)]
    assert totals["macs_fvcore"] == macs.dense_summary(model, shape)["macs_total"]
    assert totals["macs"] == sum(r["macs"] for r in rows)
    mem = memory.dense_summary(model, shape)
    for key in ("weights_read", "inputs_read", "outputs_written"):
        assert totals[key] == mem[key]
    assert totals["bytes"] == mem["total_bytes"]
    est = energy.estimate(totals["macs"], mem, "eyeriss65")
    assert totals["energy_eyeriss65_model"] == pytest.approx(est["total"])
    assert totals["energy_unit_horowitz45"] == "pJ"
    assert "aten::add:8" in totals["ignored_ops"]
    assert all(not k.startswith("energy_") or k.endswith("_model") or k.startswith("energy_unit_")
               for k in rows[0])


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_one_mac_convention_from_the_profile_to_the_claims(name):
    """Issue 23.3: T1 (the profile) counted fvcore's MACs, padding taps included (C3D
    427.8 M at the default size), while T2, the comparison and the claims divide by the
    exact count (321.7 M). The profile's `macs` is now that exact count, the one the AAP
    network and the comparison records use; fvcore's stays beside it, named."""
    import copy

    from dance.aap.model import AAPNet
    from dance.sota.record import static_costs

    model = build_model(name, 5, width=0.125, frames=4, size=24)
    shape = (1, 3, 4, 24, 24)
    rows, totals = profile_model(model, shape, cost_tables(tiny_config(Path("/nonexistent"))["energy"]))
    assert totals["macs"] == AAPNet(copy.deepcopy(model), None, shape).macs["total"]
    assert totals["macs"] == static_costs(model, shape[1:])["macs"]
    assert totals["macs"] < totals["macs_fvcore"]      # fvcore counts the padding taps
    for r in rows:
        if r["type"] == "Linear":
            assert r["macs"] == r["macs_fvcore"]


def test_profile_cli_writes_layers_and_summary(trained, capsys):
    cfg, cfg_file = trained
    assert cli.main(["profile", "--config", str(cfg_file)]) == 0
    paths = Paths(cfg)
    layers, summary = _read(paths.profile_layers), _read(paths.profile_summary)
    shape = (1, 3, cfg["dataset"]["frames"], cfg["dataset"]["size"], cfg["dataset"]["size"])
    n_layers = {m: len(macs.dense_profile(build_model(m, 10, width=cfg["model"]["width"]), shape))
                for m in cfg["models"]}
    assert len(layers) == sum(n_layers.values())
    assert [s["model"] for s in summary] == cfg["models"]
    for s in summary:
        mine = [r for r in layers if r["model"] == s["model"]]
        assert int(s["layers"]) == len(mine) == n_layers[s["model"]]
        for col in ("macs", "params", "weights_read", "inputs_read", "outputs_written", "bytes"):
            assert int(s[col]) == sum(int(r[col]) for r in mine), col
        for col in ("energy_eyeriss65_model", "energy_horowitz45_model"):
            assert float(s[col]) == pytest.approx(sum(float(r[col]) for r in mine), rel=1e-9)
        assert s["energy_unit_eyeriss65"] == "MAC-normalised" and s["ignored_ops"]
    energy_cols = [c for c in layers[0] if c.startswith("energy_") and "unit" not in c]
    assert energy_cols and all(c.endswith("_model") for c in energy_cols)


def test_bench_cli_csv_columns_and_unmeasured_energy(trained, capsys):
    cfg, cfg_file = trained
    code = cli.main(["bench", "--config", str(cfg_file), "--model", "c3d",
                     "--variants", "dense-native,dense-channels-last"])
    out = capsys.readouterr().out
    assert code == 0
    assert "speed-up vs dense" in out and "dense-native" in out
    path = Paths(cfg).bench("c3d", "baseline")
    rows = _read(path)
    assert list(rows[0]) == BENCH_COLUMNS
    assert [r["variant"] for r in rows] == ["dense", "dense-native", "dense-channels-last"]
    for r in rows:
        assert float(r["median_ms"]) > 0 and int(r["n"]) == 2
        assert r["threads"] == "1" and r["conv_backend"] == "auto" and r["cpu"]
        assert json.loads(r["backend_audit"])
        if not rapl.available()[0]:
            assert r["energy_j_per_clip"] == ""
            assert r["energy_status"].startswith("RAPL not readable")
    assert float(rows[0]["speedup_vs_dense"]) == 1.0
    detail = json.loads(path.with_suffix(".json").read_text())
    assert detail["slow_path_check"]["batch1_audit"]
    assert max(detail["max_abs_logit_diff_vs_dense"].values()) < 1e-4


def test_bench_with_readable_rapl_fills_energy(trained, tmp_path):
    cfg, _ = trained
    from test_latency import fake_powercap

    fake_powercap(tmp_path)  # counters never move: 0 J, but measured and labelled so
    out, rows = run_bench(cfg, "r3d18", "baseline", "dense",
                          meter=rapl.RaplMeter(tmp_path))
    assert [r["variant"] for r in rows] == ["dense"]
    assert rows[0]["energy_j_per_clip"] == 0.0
    assert rows[0]["energy_status"].startswith("measured")


def test_bench_unknown_variant_is_a_config_error(trained, capsys):
    _, cfg_file = trained
    code = cli.main(["bench", "--config", str(cfg_file), "--model", "c3d",
                     "--variants", "dance@nothing"])
    assert code == 2 and "dance@nothing" in capsys.readouterr().err
