"""Do depthwise kernels look like centre-surround receptive fields? (the paper's §3.1, and a DoG fit)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.cluster import KMeans

from .dog import dog_bank, is_shapeable
from .errors import TimmDogError
from .init import depthwise_kernels
from .sources import load_model

CLUSTERS = ("excitatory-centre", "inhibitory-centre", "other")
FIT_GAMMAS = torch.linspace(0.02, 0.98, 49)
CONTRAST = 0.25  # |centre − surround| of a cluster's mean kernel that makes it centre-surround


def normalise(kernels: torch.Tensor) -> np.ndarray:
    """Min-max each kernel [n, kh, kw] to [0, 1] and flatten it: [n, kh·kw] (constant kernels -> 0)."""
    flat = kernels.reshape(len(kernels), -1).double()
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    span = (high - low).clamp(min=1e-12)
    return ((flat - low) / span).numpy()


def _centre_mask(kh: int, kw: int) -> np.ndarray:
    mask = np.zeros((kh, kw), dtype=bool)
    mask[(kh - 1) // 2 : kh // 2 + 1, (kw - 1) // 2 : kw // 2 + 1] = True
    return mask.reshape(-1)


def cluster(kernels: torch.Tensor, seed: int = 0, contrast: float = CONTRAST) -> dict:
    """k-means (k = 3, seeded) on min-max normalised kernels; each cluster named from its mean kernel.

    The mean's centre-minus-surround contrast (on the [0, 1] scale) names it: ≥ ``contrast``
    excitatory-centre, ≤ −``contrast`` inhibitory-centre, else other. Two clusters may share a name
    (e.g. on-centre kernels of small and of large γ).
    """
    kh, kw = kernels.shape[1:]
    data = normalise(kernels)
    if len(data) < 3:
        raise TimmDogError(f"k-means with k = 3 needs at least 3 kernels; got {len(data)}")
    kmeans = KMeans(n_clusters=3, n_init=10, random_state=seed).fit(data)
    centre = _centre_mask(kh, kw)
    centres = kmeans.cluster_centers_
    contrasts = centres[:, centre].mean(1) - centres[:, ~centre].mean(1)
    names = [CLUSTERS[0] if c >= contrast else CLUSTERS[1] if c <= -contrast else CLUSTERS[2] for c in contrasts]
    labels = np.array(names)[kmeans.labels_]
    return {
        "labels": labels,
        "assignment": kmeans.labels_,
        "clusters": [
            {
                "name": names[i],
                "contrast": float(contrasts[i]),
                "mean": centres[i].reshape(kh, kw),
                "fraction": float((kmeans.labels_ == i).mean()),
            }
            for i in range(3)
        ],
        "fractions": {name: float((labels == name).mean()) for name in CLUSTERS},
    }


def dog_fit(kernels: torch.Tensor, gammas: torch.Tensor = FIT_GAMMAS) -> torch.Tensor:
    """Per kernel, the best |Pearson correlation| with a DoG over a γ grid (either polarity): [n]."""
    kh, kw = kernels.shape[1:]
    templates = dog_bank((kh, kw), gammas).reshape(len(gammas), -1)
    templates = templates - templates.mean(1, keepdim=True)
    templates = templates / templates.norm(dim=1, keepdim=True)
    flat = kernels.reshape(len(kernels), -1).double()
    flat = flat - flat.mean(1, keepdim=True)
    flat = flat / flat.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return (flat @ templates.T).abs().amax(dim=1)


def surround_antagonism(kernels: torch.Tensor) -> torch.Tensor:
    """Per kernel [n], in [0, 1]: the opposite-sign mass of its surround relative to the mass of its centre's sign,
    capped at 1. The centre is the middle tap(s) (the innermost ring), its sign that of their sum; the surround every
    other tap; a kernel whose centre sums to 0 scores 0.

    A DoG of either polarity scores 1 (its ±0.5 parts); a centred shape without a surround of the other sign
    (gaussian, impulse, box) 0. It does not tell centre-surround from unstructured kernels: random ones have taps of
    both signs everywhere and score high too (:func:`dog_fit` and the clusters tell those apart).
    """
    kh, kw = kernels.shape[1:]
    flat = kernels.reshape(len(kernels), -1).double()
    centre = torch.from_numpy(_centre_mask(kh, kw))
    signed = flat * torch.sign(flat[:, centre].sum(1, keepdim=True))
    own = signed.clamp(min=0).sum(1)
    opposite = signed[:, ~centre].neg().clamp(min=0).sum(1)
    return torch.where(own > 0, opposite / own.clamp(min=1e-300), torch.zeros_like(own)).clamp(max=1.0)


def analyze_model(model: torch.nn.Module, seed: int = 0, fit_threshold: float = 0.8, fused: bool = True) -> dict:
    """Cluster proportions, DoG-fit scores and mean surround antagonism (:func:`surround_antagonism`) of every
    depthwise kernel size in ``model``.

    ``fused``: a re-parameterizable model (MobileOne, FastViT, RepViT …: modules with timm's ``fuse`` /
    ``reparameterize`` / ``switch_to_deploy``) is measured as it runs, on a copy fused by timm's
    ``reparameterize_model`` in eval mode; ``fused=False`` measures its training-time branches. The result's
    ``"fused"`` says whether the kernels measured are fused ones (False also for a model with nothing to fuse).
    """
    from timm.utils.model import reparameterize_model

    fuse = fused and any(
        hasattr(m, name) for m in model.modules() for name in ("fuse", "reparameterize", "switch_to_deploy")
    )
    if fuse:
        try:
            model = reparameterize_model(copy.deepcopy(model).eval(), inplace=True)
        except AttributeError:  # already fused: timm's fusing deletes the branches it reads, so it runs as it is
            pass
    sizes = {}
    for (kh, kw), kernels in sorted(depthwise_kernels(model).items()):
        if not is_shapeable((kh, kw)) or len(kernels) < len(CLUSTERS):
            continue
        result = cluster(kernels, seed)
        fit = dog_fit(kernels)
        antagonism = surround_antagonism(kernels)
        sizes[f"{kh}x{kw}"] = {
            "kernels": len(kernels),
            "fractions": result["fractions"],
            "centre_surround_fraction": result["fractions"][CLUSTERS[0]] + result["fractions"][CLUSTERS[1]],
            "dog_fit_mean": float(fit.mean()),
            "dog_fit_above": float((fit > fit_threshold).double().mean()),
            "surround_antagonism": float(antagonism.mean()),
            "_cluster": result,
            "_kernels": kernels,
        }
    if not sizes:
        raise TimmDogError(f"{type(model).__name__} has no depthwise kernels to analyse")
    total = sum(s["kernels"] for s in sizes.values())
    return {
        "kernels": total,
        "centre_surround_fraction": sum(s["centre_surround_fraction"] * s["kernels"] for s in sizes.values()) / total,
        "dog_fit_above": sum(s["dog_fit_above"] * s["kernels"] for s in sizes.values()) / total,
        "surround_antagonism": sum(s["surround_antagonism"] * s["kernels"] for s in sizes.values()) / total,
        "fit_threshold": fit_threshold,
        "fused": fuse,
        "sizes": sizes,
    }


def public(result: dict) -> dict:
    """``analyze_model``'s result without the arrays (for JSON)."""
    return {
        **result,
        "sizes": {k: {n: v for n, v in s.items() if not n.startswith("_")} for k, s in result["sizes"].items()},
    }


def label(source: str, checkpoint=None) -> str:
    """How a SOURCE is named in the table and the JSON: by its checkpoint, or by itself without one."""
    return str(checkpoint) if checkpoint else source


def analyze_sources(
    given: list, device="cpu", seed: int = 0, fit_threshold: float = 0.8, fused: bool = True
) -> Iterator[tuple]:
    """:func:`analyze_model` of each (source, checkpoint) in ``given`` (``sources.load_model``), one at a time:
    (label, result, the JSON record of it: source, checkpoint, weights and the numbers). A refusal names its
    source."""
    for source, checkpoint in given:
        try:
            model, weights = load_model(source, checkpoint)
            result = analyze_model(model.to(device), seed=seed, fit_threshold=fit_threshold, fused=fused)
        except TimmDogError as error:
            raise TimmDogError(str(error) if source in str(error) else f"{source}: {error}") from None
        yield (
            label(source, checkpoint),
            result,
            {"source": source, "checkpoint": checkpoint, "weights": weights.to_dict(), **public(result)},
        )
