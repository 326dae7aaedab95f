"""The paper's ConvMixer-512/12 (kernel 9, patch 7), which timm does not define."""

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.convmixer import ConvMixer

__all__ = ["convmixer_512"]

default_cfgs = generate_default_cfgs(
    {
        "convmixer_512": {
            "num_classes": 1000,
            "input_size": (3, 224, 224),
            "pool_size": None,
            "crop_pct": 0.96,
            "interpolation": "bicubic",
            "mean": IMAGENET_DEFAULT_MEAN,
            "std": IMAGENET_DEFAULT_STD,
            "first_conv": "stem.0",
            "classifier": "head",
            "license": "apache-2.0",
            "paper_ids": "arXiv:2201.09792",
            "notes": ("convmixer_512 is defined by timm-dog, not by timm: loading needs `pip install timm-dog`.",),
        },
    }
)


@register_model
def convmixer_512(pretrained=False, **kwargs) -> ConvMixer:
    """ConvMixer-512/12, kernel 9, patch 7 (Trockman & Kolter), as used in arXiv 2401.10178."""
    out_indices = kwargs.pop("out_indices", 3)
    model_args = dict(dim=512, depth=12, kernel_size=9, patch_size=7, **kwargs)
    return build_model_with_cfg(
        ConvMixer,
        "convmixer_512",
        pretrained,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **model_args,
    )
