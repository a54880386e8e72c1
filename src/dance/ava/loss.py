"""The AVA objective: cross-entropy − λ·σ²_AVA (method.md §2, our reconstruction).

σ²_AVA is computed on the tensors that feed the prunable convs — the inputs of the model's
:class:`~dance.models.sites.Site` modules, i.e. the (pooled) post-activation outputs of every
conv but the last — because those are the tensors AAP later prunes. An
:class:`ActivationRecorder` collects them with forward hooks, so the backbone code is not
touched and the activations keep their autograd graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dance.ava.profiles import magnitude_profiles, normalised_variance
from dance.train.loop import LossFn

TERMS = ("L_FR", "L_CH", "L_FE")


class ActivationRecorder:
    """Context manager recording the input of every site during the current forward.

    ``with ActivationRecorder(model) as rec: model(x)`` leaves ``rec.activations`` = one
    tensor per site, in execution order (``rec.names`` gives the site names). Each forward
    of `model` starts a fresh list. On exit (or :meth:`remove`) the hooks are removed: the
    model is then exactly as before and later forwards record nothing. The tensors are not
    detached, so a loss built from them back-propagates into the network.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.sites = [(name, site) for name, site, _ in model.prunable_convs()]
        self.names: list[str] = []
        self.activations: list[Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def start(self) -> ActivationRecorder:
        if self._handles:
            return self
        self._handles.append(self.model.register_forward_pre_hook(self._reset))
        for name, site in self.sites:
            self._handles.append(site.register_forward_hook(self._hook(name)))
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def recording(self) -> bool:
        return bool(self._handles)

    def clear(self) -> None:
        """Forget what was recorded (done automatically at the start of each `model(...)`;
        call it yourself when running sub-modules such as ``model.features``)."""
        self.names, self.activations = [], []

    def _reset(self, module: nn.Module, args: tuple) -> None:
        self.clear()

    def _hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            self.names.append(name)
            self.activations.append(args[0])
        return hook

    def __enter__(self) -> ActivationRecorder:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.remove()


def ava_terms(activations: list[Tensor]) -> dict[str, Tensor]:
    """L_FR, L_CH, L_FE: normalised profile variances averaged over batch and layers.

    A layer whose dimension has a single entry (e.g. T = 1 deep in C3D on short clips)
    has no distribution along it and is left out of that term's mean (our choice: counting
    it would only scale the term down by a constant). A term with no layer is 0.
    """
    sums = {t: [] for t in TERMS}
    for a in activations:
        for term, p in zip(TERMS, magnitude_profiles(a), strict=True):
            if p.shape[1] > 1:
                sums[term].append(normalised_variance(p).mean())
    ref = activations[0] if activations else torch.zeros(())
    return {t: torch.stack(v).mean() if v else ref.new_zeros(()) for t, v in sums.items()}


def sigma2(terms: dict[str, Tensor], w_fr: float = 1.0, w_ch: float = 1.0,
           w_fe: float = 1.0) -> Tensor:
    """σ²_AVA = w_FR·L_FR + w_CH·L_CH + w_FE·L_FE (method.md §2, Figure 2)."""
    return w_fr * terms["L_FR"] + w_ch * terms["L_CH"] + w_fe * terms["L_FE"]


def ava_loss_fn(lam: float, w_fr: float = 1.0, w_ch: float = 1.0, w_fe: float = 1.0,
                label_smoothing: float = 0.0) -> LossFn:
    """A :data:`~dance.train.loop.LossFn` for `fit`: CE − λ·σ²_AVA.

    Logs `ce`, `L_FR`, `L_CH`, `L_FE` and `sigma2_ava` (per-epoch means in the history).
    """
    def loss_fn(model: nn.Module, x: Tensor, y: Tensor):
        with ActivationRecorder(model) as rec:
            logits = model(x)
        terms = ava_terms(rec.activations)
        s2 = sigma2(terms, w_fr, w_ch, w_fe)
        ce = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        logged = {"ce": float(ce.detach()), **{t: float(v.detach()) for t, v in terms.items()},
                  "sigma2_ava": float(s2.detach())}
        return ce - lam * s2, logits, logged
    return loss_fn
