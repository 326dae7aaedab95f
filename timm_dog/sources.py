"""Where a model comes from: a timm name (+ a checkpoint), ``hf-hub:ORG/NAME`` or ``local-dir:PATH``."""

from __future__ import annotations

from pathlib import Path

import timm

from .errors import TimmDogError
from .trainpy.checkpoints import Weights, load_checkpoint, tensors_sha256


def load_model(source: str, checkpoint: str | None = None, use_ema: bool = False, **kwargs):
    """(model in eval mode, :class:`Weights`). Hub and local folders load their weights; a name gets a fresh init
    (DoG for ``*_dog``) unless ``checkpoint`` (a train.py checkpoint or safetensors file) is given."""
    if use_ema and not checkpoint:
        raise TimmDogError("--ema applies to a train.py checkpoint (its state_dict_ema): give --checkpoint")
    if source.startswith(("hf-hub:", "local-dir:")):
        if checkpoint:
            raise TimmDogError(f"--checkpoint applies to a model name, not to {source}: it carries its own weights")
        if source.startswith("local-dir:") and not (Path(source[len("local-dir:") :]) / "config.json").exists():
            raise TimmDogError(f"{source}: no config.json in that folder (expected timm's save_for_hf layout)")
        model = timm.create_model(source, pretrained=True, **kwargs).eval()
        return model, Weights(tensors_sha256(model.state_dict()), source, model_args=dict(kwargs))
    if not timm.is_model(source):
        weights_file = Path(source).is_file()  # a checkpoint given where the model name goes
        raise TimmDogError(
            f"unknown model {source!r}: give a timm model name, hf-hub:ORG/NAME or local-dir:PATH"
            + (" (a weights file goes after --checkpoint, with the model's name before it)" if weights_file else "")
        )
    if checkpoint:
        model, _, weights = load_checkpoint(source, checkpoint, use_ema)
        return model, weights
    model = timm.create_model(source, **kwargs).eval()
    return model, Weights(tensors_sha256(model.state_dict()), f"fresh init of {source}", model_args=dict(kwargs))
