"""Memory-access and energy models on the worked example of docs/measurement.md."""

import pytest
import torch
from torch import nn

from dance.errors import ConfigError
from dance.measure import energy, macs, memory
from dance.models import build_model


def _example_conv(bias: bool = False) -> nn.Conv3d:
    # The worked example: Cin 4 -> Cout 8, 3×3×3, stride 1, padding 1, input 4×4×6×6.
    return nn.Conv3d(4, 8, kernel_size=3, padding=1, bias=bias)


def test_worked_example_pruned():
    conv = _example_conv()
    # Keep 2 of 4 channels, 3 of 4 frames, 24 of 36 spatial features: 2·3·24 = 144 elements.
    acc = memory.conv_accesses(conv, (4, 4, 6, 6), (8, 4, 6, 6),
                               kept_in_channels=2, kept_in_elements=144)
    assert acc["weights_read"] == 8 * 2 * 27 == 432
    assert acc["inputs_read"] == 144
    assert acc["outputs_written"] == 8 * 4 * 6 * 6 == 1152
    assert acc["total"] == 432 + 144 + 1152 == 1728
    assert acc["total_bytes"] == 1728 * 4 == 6912
    assert acc["weights_read_bytes"] == 1728 and acc["bytes_per_element"] == 4


def test_worked_example_dense_and_bias():
    dense = memory.conv_accesses(_example_conv(), (1, 4, 4, 6, 6), (1, 8, 4, 6, 6), 4, 576)
    assert (dense["weights_read"], dense["inputs_read"], dense["outputs_written"]) == (864, 576, 1152)
    assert dense["total"] == 2592 and dense["total_bytes"] == 10368
    with_bias = memory.conv_accesses(_example_conv(bias=True), (4, 4, 6, 6), (8, 4, 6, 6), 2, 144,
                                     bytes_per_element=2)
    assert with_bias["weights_read"] == 432 + 8
    assert with_bias["total_bytes"] == (440 + 144 + 1152) * 2
    with pytest.raises(ValueError):
        memory.conv_accesses(_example_conv(), (4, 4, 6, 6), (8, 4, 6, 6), 5, 144)


def test_dense_model_profile():
    model = build_model("c3d", num_classes=10, width=0.25)
    rows = memory.dense_profile(model, (1, 3, 4, 16, 16))
    first = rows[0]
    assert first["layer"] == "conv1"
    assert first["weights_read"] == 16 * 3 * 27
    assert first["inputs_read"] == 3 * 4 * 16 * 16
    assert first["outputs_written"] == 16 * 4 * 16 * 16
    fc8 = rows[-1]
    assert fc8["layer"] == "fc8" and fc8["weights_read"] == 1024 * 10 + 10
    summary = memory.dense_summary(model, (1, 3, 4, 16, 16))
    assert summary["total"] == sum(r["total"] for r in rows)
    assert summary["total_bytes"] == 4 * summary["total"]
    assert len(rows) == 8 + 3  # 8 convs + 3 linear layers


def test_energy_presets_by_hand():
    conv = _example_conv()
    dense_macs = macs.dense_conv_macs(conv, (8, 4, 6, 6))
    assert dense_macs == 8 * 4 * 27 * 4 * 6 * 6 == 124_416
    acc = memory.conv_accesses(conv, (4, 4, 6, 6), (8, 4, 6, 6), 4, 576)  # A = 2592 elements

    e = energy.estimate(dense_macs, acc, "eyeriss65")
    # compute = MACs·(MAC 1 + 4 RF accesses · 1); on-chip = A·(buffer 6 + inter-PE 2);
    # DRAM = A·200.
    assert e["compute"] == 124_416 * 5 == 622_080
    assert e["onchip"] == 2592 * 8 == 20_736
    assert e["dram"] == 2592 * 200 == 518_400
    assert e["total"] == 622_080 + 20_736 + 518_400 == 1_161_216
    assert e["label"] == "model estimate" and e["preset"] == "eyeriss65"

    h = energy.estimate(dense_macs, acc, "horowitz45")
    # compute = MACs·(4.6 pJ + 4 register-file accesses · 1 pJ, Han et al. 2015's table);
    # on-chip = A·5 pJ (SRAM); DRAM = A·640 pJ.
    assert h["compute"] == pytest.approx(124_416 * 8.6) == pytest.approx(1_069_977.6)
    assert h["onchip"] == 12_960
    assert h["dram"] == 1_658_880
    assert h["total"] == pytest.approx(2_741_817.6)
    assert h["unit"] == "pJ"


def test_energy_custom_table_and_errors():
    table = {"mac": 2.0, "rf": 0.5, "rf_per_mac": 2, "noc": 0.0, "buffer": 1.0, "dram": 10.0}
    acc = {"weights_read": 10, "inputs_read": 20, "outputs_written": 30}
    e = energy.estimate(100, acc, table)
    assert (e["compute"], e["onchip"], e["dram"]) == (300.0, 60.0, 600.0)
    assert e["preset"] == "custom" and e["label"] == "model estimate"
    with pytest.raises(ConfigError, match="eyeriss65.*horowitz45"):
        energy.estimate(1, acc, "tpu")
    with pytest.raises(ConfigError, match="dram"):
        energy.estimate(1, acc, {k: v for k, v in table.items() if k != "dram"})
    with pytest.raises(ValueError, match="outputs_written"):
        energy.estimate(1, {"weights_read": 1, "inputs_read": 1}, "eyeriss65")


def test_measurement_is_pure():
    model = build_model("r3d18", num_classes=3, width=0.25).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    memory.dense_summary(model, (1, 3, 4, 16, 16))
    macs.dense_summary(model, (1, 3, 4, 16, 16))
    assert model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
