"""AVA: Lemma 1, profiles, the activation recorder, the loss, training and its effect."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dance import config as config_mod
from dance.ava.loss import ActivationRecorder, ava_loss_fn, ava_terms, sigma2
from dance.ava.profiles import (
    hoyer,
    hoyer_from_l2,
    l2_from_variance,
    magnitude_profiles,
    normalised_variance,
)
from dance.ava.stats import sparsity_stats
from dance.identity import stage_identity, train_section
from dance.io import sha256_file
from dance.models.registry import build_model
from dance.models.trained import load_trained
from dance.paths import Paths
from dance.train import loop
from dance.train.ava import train_ava

from conftest import copy_trained, stage_schedule, tiny_config

# --- Lemma 1 -------------------------------------------------------------------------------

_weights = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=2, max_size=40).filter(
    lambda w: sum(w) > 1e-3)


@settings(max_examples=200, deadline=None)
@given(_weights)
def test_lemma1_closed_forms_match_direct_computation(w):
    x = torch.tensor(w, dtype=torch.float64)
    x = (x / x.sum())[None]
    n = x.shape[1]
    var = x.var(dim=1, unbiased=False)
    l2 = x.norm(dim=1)
    assert torch.allclose(l2_from_variance(var, n), l2, rtol=1e-9, atol=1e-12)
    assert torch.allclose(hoyer_from_l2(l2, n), hoyer(x), rtol=1e-9, atol=1e-9)
    assert math.isclose(l2_from_variance(float(var), n), float(l2), rel_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 30), st.lists(st.integers(0, 2**31 - 1), min_size=2, max_size=30))
def test_lemma1_std_and_hoyer_increase_with_l2(n, seeds):
    """Points of one simplex sorted by ‖x‖₂: std and Hoyer rise with it, strictly."""
    rows = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        # Dirichlet-like points of varied concentration: some flat, some peaked.
        w = torch.rand(n, generator=g, dtype=torch.float64) ** (1 + seed % 7)
        rows.append(w / w.sum())
    x = torch.stack(rows)
    l2 = x.norm(dim=1)
    order = torch.argsort(l2)
    l2, std, h = l2[order], x[order].std(dim=1, unbiased=False), hoyer(x[order])
    nv = normalised_variance(x[order])
    rising = torch.diff(l2) > 1e-9
    for values in (std, h, nv):
        step = torch.diff(values)
        assert bool((step[rising] > 0).all())
        assert bool((step[~rising].abs() < 1e-7).all())


def test_normalised_variance_and_hoyer_extremes():
    for n in (2, 3, 16, 512):
        uniform = torch.full((1, n), 1.0 / n)
        onehot = torch.zeros(1, n)
        onehot[0, n // 2] = 1.0
        assert float(normalised_variance(uniform)) == pytest.approx(0.0, abs=1e-6)
        assert float(normalised_variance(onehot)) == pytest.approx(1.0, rel=1e-5)
        assert float(hoyer(uniform)) == pytest.approx(0.0, abs=1e-5)
        assert float(hoyer(onehot)) == pytest.approx(1.0, rel=1e-5)
    assert float(normalised_variance(torch.ones(3, 1))[0]) == 0.0


def test_magnitude_profiles_reduce_the_right_dims_and_guard_zero():
    a = torch.zeros(2, 3, 4, 2, 5)  # N, C, T, H, W
    a[0, 1, 2, 0, 3] = -6.0  # one element: one channel, one frame, one feature
    fr, ch, fe = magnitude_profiles(a)
    assert fr.shape == (2, 4) and ch.shape == (2, 3) and fe.shape == (2, 10)
    assert torch.equal(fr[0], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert torch.equal(ch[0], torch.tensor([0.0, 1.0, 0.0]))
    assert int(fe[0].argmax()) == 0 * 5 + 3 and float(fe[0].max()) == 1.0
    for p in (fr, ch, fe):  # sample 1 is all zero: uniform, no NaN
        assert torch.allclose(p[1], torch.full_like(p[1], 1.0 / p.shape[1]))
    b = torch.randn(3, 4, 5, 6, 7, requires_grad=True)
    for p in magnitude_profiles(b):
        assert torch.allclose(p.sum(1), torch.ones(3))
    sum(normalised_variance(p).sum() for p in magnitude_profiles(a.requires_grad_()))\
        .backward()
    assert torch.isfinite(a.grad).all()


# --- recorder and loss ------------------------------------------------------------------------

def _tiny_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes=5, width=0.125, frames=8, size=32).eval()


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_recorder_captures_one_conv_input_per_site_per_forward(name):
    model = _tiny_model(name)
    convs = model.prunable_convs()
    seen: list[torch.Tensor] = []
    handles = [conv.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
               for _, _, conv in convs]
    x = torch.randn(2, 3, 8, 32, 32)
    with ActivationRecorder(model) as rec:
        for batch in (x, x[:1]):
            seen.clear()
            model(batch)
            assert rec.names == [n for n, _, _ in convs]
            assert len(rec.activations) == len(convs)
            for a, (_, _, conv), fed in zip(rec.activations, convs, seen, strict=True):
                assert a.ndim == 5 and a.shape[0] == len(batch)
                assert a.shape[1] == conv.in_channels
                assert torch.equal(a, fed)  # exactly the tensor the conv reads
    for h in handles:
        h.remove()
    kept = list(rec.activations)
    model(x)
    assert not rec.recording and rec.activations == kept  # nothing recorded after exit
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_gradient_step_on_minus_sigma2_raises_sigma2(name):
    model = _tiny_model(name)
    x = torch.randn(4, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))

    def s2() -> torch.Tensor:
        with ActivationRecorder(model) as rec:
            model(x)
        return sigma2(ava_terms(rec.activations))

    before = s2()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    (-before).backward()
    opt.step()
    with torch.no_grad():
        after = s2()
    assert float(after) > float(before.detach()) + 1e-4


def test_ava_loss_is_ce_minus_lambda_sigma2_and_logs_terms():
    model = _tiny_model("c3d")
    x, y = torch.randn(3, 3, 8, 32, 32), torch.tensor([0, 1, 2])
    loss, logits, terms = ava_loss_fn(2.5, w_fr=1.0, w_ch=0.5, w_fe=0.0)(model, x, y)
    assert set(terms) == {"ce", "L_FR", "L_CH", "L_FE", "sigma2_ava"}
    assert terms["sigma2_ava"] == pytest.approx(terms["L_FR"] + 0.5 * terms["L_CH"], rel=1e-5)
    assert float(loss.detach()) == pytest.approx(terms["ce"] - 2.5 * terms["sigma2_ava"], rel=1e-5)
    assert 0 < terms["L_CH"] < 1 and logits.shape == (3, 5)
    assert not any(m._forward_hooks for m in model.modules())


def test_a_per_model_override_changes_only_that_models_baseline(monkeypatch):
    a = config_mod.validate({})
    b = config_mod.validate({"train": {"per_model": {"r3d18": {"lr": 1e-4}}}})
    assert stage_identity(a, "c3d", "baseline") == stage_identity(b, "c3d", "baseline")
    assert stage_identity(a, "r3d18", "baseline") != stage_identity(b, "r3d18", "baseline")
    assert train_section(b, "r3d18")["lr"] == 1e-4
    assert train_section(b, "c3d")["lr"] == a["train"]["lr"]
    assert "per_model" not in train_section(b, "r3d18")
    # and the baseline really trains with it
    from dance.train import baseline

    def lr(cfg, model):
        return stage_schedule(monkeypatch, baseline, baseline.train_baseline, cfg, model).lr

    assert lr(b, "r3d18") == 1e-4
    assert lr(b, "c3d") == a["train"]["lr"]

# --- training end to end ----------------------------------------------------------------------

# Strong λ and LR so that 2 short epochs move the profiles far beyond run-to-run noise.
# λ 30 and a feature weight of 3: with C3D's Kaiming-initialised fc6/fc7 (see dance.models.c3d)
# λ 10 moved the feature profile only ×1.11 at seed 0 (λ 30 alone: ×1.28).
AVA = {"epochs": 2, "lambda": 30.0, "lr": 0.05, "w_fe": 3.0}


@pytest.fixture(scope="module")
def trained(tiny_baselines, tmp_path_factory):
    """The session's tiny C3D baseline and its AVA fine-tuning, trained once for the tests
    below."""
    cfg = copy_trained(tiny_baselines, tmp_path_factory.mktemp("ava"), ava=AVA)
    return cfg, train_ava(cfg, "c3d")


def test_train_ava_writes_checkpoint_history_and_raises_sparsity(trained):
    cfg, ckpt = trained
    paths = Paths(cfg)
    model = load_trained(cfg, "c3d", "ava", num_classes=10)
    base = load_trained(cfg, "c3d", "baseline", num_classes=10)
    assert any(not torch.equal(p, q) for p, q in zip(model.state_dict().values(),
                                                   base.state_dict().values(), strict=True))
    header = paths.history("c3d", "ava").read_text().splitlines()[0].split(",")
    for col in ("ce", "L_FR", "L_CH", "L_FE", "sigma2_ava", "val_top1"):
        assert col in header
    summary = json.loads(sparsity_stats(cfg, "c3d").read_text())
    assert summary["top1_source"] == {"baseline": "computed", "ava": "computed"}
    dims = summary["dims"]
    # Seeds 0-2 of this setting: frame Hoyer ×5.6-28, feature ×2.1-4.0, channel ×0.92-1.04.
    # The channel term moves least (BN re-normalises channels) and is only required not to
    # collapse.
    for dim in ("frame", "feature"):
        assert dims[dim]["hoyer_after"] > 1.3 * dims[dim]["hoyer_before"], (dim, dims[dim])
    assert dims["channel"]["hoyer_after"] > 0.8 * dims["channel"]["hoyer_before"], dims
    mean_gain = sum(d["hoyer_after"] for d in dims.values()) / sum(
        d["hoyer_before"] for d in dims.values())
    assert mean_gain > 1.3, dims
    rows = paths.ava_sparsity("c3d").read_text().splitlines()
    assert rows[0] == "model,stage,layer,dim,hoyer,norm_variance,n,length"
    assert len(rows) > 1 and all(r.split(",")[6] == "10" for r in rows[1:])  # 10 test clips
    prof = paths.ava_profiles("c3d").read_text().splitlines()
    assert prof[0] == "stage,clip,layer,dim,rank,value"
    layers = {r.split(",")[2] for r in prof[1:]}
    clips = {r.split(",")[1] for r in prof[1:]}
    assert layers == {"conv2", "conv4a", "conv5b"} and clips == {"0", "1", "2", "3"}


def test_train_ava_resumes_from_its_epoch_checkpoint(trained, tmp_path, monkeypatch, capfd):
    """Interrupted after epoch 1, a re-run resumes and ends with the same bytes."""
    cfg, ref = trained
    run = tiny_config(tmp_path, ava=AVA)
    shutil.copytree(Paths(cfg).data_dir, Paths(run).data_dir)
    baseline = Paths(run).checkpoint("c3d", "baseline")
    baseline.parent.mkdir(parents=True)
    shutil.copy(Paths(cfg).checkpoint("c3d", "baseline"), baseline)

    real_save = loop.checkpoint.save

    def save_then_die(path, payload):
        real_save(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop.checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_ava(run, "c3d")
    monkeypatch.setattr(loop.checkpoint, "save", real_save)
    state = list(Paths(run).epoch_checkpoint_dir("c3d", "ava").glob("run-*/epoch_*.pt"))
    assert [p.name for p in state] == ["epoch_000.pt"]
    assert not Paths(run).checkpoint("c3d", "ava").exists()
    capfd.readouterr()
    out = train_ava(run, "c3d")
    assert "resuming after epoch 1" in capfd.readouterr().err
    assert sha256_file(out) == sha256_file(ref)
    assert (Paths(run).history("c3d", "ava").read_bytes()
            == Paths(cfg).history("c3d", "ava").read_bytes())
