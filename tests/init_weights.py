"""Imported by train.py through ``--device-modules init_weights``: at the first training forward of the timm model
(before any optimizer step: the weights train.py initialized) saves its state_dict to $INIT_WEIGHTS and ends
train.py (args.yaml is written by then)."""

import os

import torch


def _save(module, args):
    if module.training and getattr(module, "pretrained_cfg", None) is not None:
        torch.save(module.state_dict(), os.environ["INIT_WEIGHTS"])
        os._exit(0)


torch.nn.modules.module.register_module_forward_pre_hook(_save)
