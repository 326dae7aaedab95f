"""Where a model comes from: a timm name (+ a checkpoint), ``hf-hub:ORG/NAME`` or ``local-dir:PATH``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import timm


def load_model(source: str, checkpoint: Optional[str] = None, **kwargs):
    """A model in eval mode. Hub and local folders load their weights; a name gets a fresh init
    (DoG for ``*_dog``) unless ``checkpoint`` (a train.py checkpoint or safetensors file) is given."""
    if source.startswith(("hf-hub:", "local-dir:")):
        if checkpoint:
            raise ValueError(f"--checkpoint applies to a model name, not to {source}: it carries its own weights")
        if source.startswith("local-dir:") and not (Path(source[len("local-dir:"):]) / "config.json").exists():
            raise ValueError(f"{source}: no config.json in that folder (expected timm's save_for_hf layout)")
        return timm.create_model(source, pretrained=True, **kwargs).eval()
    if not timm.is_model(source):
        raise ValueError(f"unknown model {source!r}: give a timm model name, hf-hub:ORG/NAME or local-dir:PATH")
    if checkpoint and not Path(checkpoint).is_file():
        raise ValueError(f"checkpoint {checkpoint} does not exist")
    return timm.create_model(source, checkpoint_path=checkpoint or "", **kwargs).eval()
