"""trainpy.checkpoints: what a number is measured on (the tensors' fingerprint)."""

import json

import torch

from timm_dog.trainpy.checkpoints import tensors_sha256


def test_tensors_sha256_is_of_the_tensors_not_their_order_or_file():
    state = {"b": torch.arange(4.0), "a": torch.ones(2, 2), "n": torch.tensor(7), "e": torch.empty(0)}
    assert tensors_sha256(state) == tensors_sha256(dict(reversed(list(state.items()))))
    assert tensors_sha256(state) != tensors_sha256({**state, "a": torch.ones(4)})  # shape counts
    assert tensors_sha256(state) != tensors_sha256({**state, "a": torch.ones(2, 2, dtype=torch.float64)})
    assert json.dumps(tensors_sha256(state))
