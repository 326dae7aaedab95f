"""Are the depthwise kernels of re-parameterizable models still centre-surround once timm fuses them?

Each model is created fresh (torch seed 0), given DoG kernels (dog_init_, seed 0), fused with timm's
reparameterize_model in eval mode, and its fused depthwise kernels analysed (timm_dog.analysis).

Usage: python benchmarks/bench_reparam.py [MODEL ...]
"""

import timm
import torch
from timm.utils.model import reparameterize_model

from timm_dog import dog_init_
from timm_dog.analysis import analyze_model

MODELS = ["fastvit_t8", "mobileone_s0", "mobileone_s1", "repvit_m1", "ghostnetv3_050", "lcnetv2_small"]


def main(models):
    print(f"{'model':<16} {'kernels':>7} {'excit.':>7} {'inhib.':>7} {'other':>7} {'c-s frac':>8} {'DoG fit>0.8':>11}")
    for name in models:
        torch.manual_seed(0)
        model = timm.create_model(name)
        dog_init_(model, seed=0)
        result = analyze_model(reparameterize_model(model.eval()))
        share = {
            k: sum(s["fractions"][k] * s["kernels"] for s in result["sizes"].values()) / result["kernels"]
            for k in ("excitatory-centre", "inhibitory-centre", "other")
        }
        print(
            f"{name:<16} {result['kernels']:>7} {share['excitatory-centre']:>7.3f} "
            f"{share['inhibitory-centre']:>7.3f} {share['other']:>7.3f} "
            f"{result['centre_surround_fraction']:>8.3f} {result['dog_fit_above']:>11.3f}"
        )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS, help="timm model names (default: %(default)s)")
    main(parser.parse_args().models)
