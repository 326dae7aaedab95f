from pathlib import Path

import PIL
import pytest
import yaml
from click.testing import CliRunner

from timm_dog.benchmark import benchmark_recipe, train_steps
from timm_dog.cli import main
from timm_dog.recipes import RecipeError, check_recipe, extract_train_args, train_py_args, unknown_keys

RECIPES = sorted((Path(__file__).parents[1] / "recipes").rglob("*.yaml"))
BASELINES = {"convnext_tiny_dog": "convnext_tiny", "convmixer_512_dog": "convmixer_512",
             "mobilenetv2_100_dog": "mobilenetv2_100"}


def test_the_recipes_are_there():
    names = {p.stem for p in RECIPES}
    assert {"convnext_tiny_dog", "convnext_tiny", "convmixer_512_dog", "convmixer_512",
            "convmixer_512_dog_gamma0-1", "convmixer_512_dog_on_only", "mobilenetv2_100_dog",
            "mobilenetv2_100"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_header_and_plugin(path):
    text = path.read_text()
    recipe = yaml.safe_load(text)
    assert recipe["device_modules"] == ["timm_dog"]
    assert not unknown_keys(recipe, train_py_args()[0])
    header = text.split("\ndevice_modules")[0]
    for needle in ("python train.py --config", "./distributed_train.sh 8", "torchrun --nnodes", "--node-rank",
                   "--rdzv-endpoint", "GiB", "hours", "come from"):
        assert needle in header, needle


@pytest.mark.parametrize("dog,base", BASELINES.items())
def test_baseline_is_a_one_line_diff(dog, base):
    folder = next(p.parent for p in RECIPES if p.stem == dog)
    a = yaml.safe_load((folder / f"{dog}.yaml").read_text())
    b = yaml.safe_load((folder / f"{base}.yaml").read_text())
    differing = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert differing <= {"model", "model_kwargs"} and b["model"] == base and "model_kwargs" not in b


@pytest.mark.slow
@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_passes_check(path):
    summary = check_recipe(path, steps=1, gpus=8)
    assert summary["transform_images"] == 2000 and len(summary["cpu_steps"]) == 1
    assert summary["lr"]["peak"] > 0 and summary["lr"]["final"] <= summary["lr"]["peak"]
    if summary["model"].endswith("_dog"):
        assert summary["dog_init"].startswith("DoG init:")


def test_table1_settings():
    recipe = yaml.safe_load((RECIPES[0].parents[1] / "imagenet" / "convnext_tiny_dog.yaml").read_text())
    assert recipe["epochs"] == 50 and recipe["opt"] == "adamw" and recipe["aa"].startswith("rand-")
    assert recipe["mixup"] > 0 and recipe["cutmix"] > 0 and recipe["reprob"] > 0 and recipe["clip_grad"]
    ablation = yaml.safe_load((RECIPES[0].parents[1] / "imagenet" / "convmixer_512_dog_on_only.yaml").read_text())
    assert ablation["model_kwargs"] == {"dog_gamma": [0.0, 0.5], "dog_on_ratio": 1.0}


@pytest.mark.skipif(int(PIL.__version__.split(".")[0]) < 13, reason="the hazard needs Pillow >= 13")
def test_check_catches_the_posterize_hazard(tmp_path):
    """timm's increasing posterize asks Pillow 13 for 0 bits at magnitude 10: caught before any GPU."""
    text = (RECIPES[0].parents[1] / "imagenet" / "convnext_tiny_dog.yaml").read_text()
    bad = tmp_path / "hazard.yaml"
    bad.write_text(text.replace("rand-m9-mstd0.5-inc1-mmax9", "rand-m9-mstd0.5-inc1"))
    with pytest.raises(RecipeError, match="train transform failed on image .*bits must be"):
        check_recipe(bad, steps=0)


def _recipe(tmp_path, **keys):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"model": "convnext_atto_dog", "num_classes": 10, "epochs": 2, **keys}))
    return path


def test_unknown_keys_and_collisions_are_all_reported(tmp_path):
    path = _recipe(tmp_path, learning_rate=0.1, **{"drop-path": 0.1, "mixupp": 0.2},
                   model_kwargs={"num_classes": 3, "dog_share": 0.5})
    with pytest.raises(RecipeError) as error:
        check_recipe(path)
    text = str(error.value)
    assert "unknown key 'learning_rate' (did you mean 'lr'?)" in text
    assert "unknown key 'drop-path' (did you mean 'drop_path'?)" in text
    assert "unknown key 'mixupp' (did you mean 'mixup'?)" in text
    assert "model_kwargs 'num_classes' collides" in text


@pytest.mark.parametrize("keys,match", [
    (dict(model_kwargs={"dog_gama": 0.3}), "did you mean 'dog_gamma'"),
    (dict(model="convnext_nope_dog"), "Unknown model"),
    (dict(pretrained=True), "would download weights"),
    (dict(opt="adamz"), "adamz"),
])
def test_what_timm_refuses_is_reported(tmp_path, keys, match):
    with pytest.raises(RecipeError, match=match):
        check_recipe(_recipe(tmp_path, **keys), steps=1, aug_samples=8)


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- lr\n")
    with pytest.raises(RecipeError, match="YAML mapping"):
        check_recipe(path)


def test_small_recipe_summary(tmp_path):
    s = check_recipe(_recipe(tmp_path, opt="adamw", lr=1e-3, batch_size=16, warmup_epochs=1, img_size=64,
                             model_kwargs={"dog_share": 0.5}), steps=2, gpus=4, aug_samples=16)
    assert s["global_batch"] == 64 and s["lr"]["base"] == pytest.approx(1e-3)
    assert s["lr"]["start"] < s["lr"]["peak"] <= 1e-3
    assert s["data_config"]["input_size"] == (3, 64, 64)
    assert "DoG init: 12 depthwise layers" in s["dog_init"] and len(s["cpu_steps"]) == 2


def test_kept_train_py_args_and_extraction(tmp_path):
    kept, source = train_py_args()
    assert "timm" in source and {"model_kwargs", "device_modules", "aa", "clip_grad", "lr_base"} <= set(kept)
    assert kept["ratio"] == pytest.approx([0.75, 4 / 3])
    train_py = tmp_path / "train.py"
    train_py.write_text(
        "import argparse\nparser = argparse.ArgumentParser()\n"
        "parser.add_argument('--new-knob', type=float, default=0.5)\n"
        "parser.add_argument('--flag', action='store_true')\n"
        "parser.add_argument('--ratio', nargs=2, default=(3. / 4., 4. / 3.))\n"
        "parser.add_argument('-x', '--other', dest='renamed', default=None)\n"
    )
    assert extract_train_args(train_py.read_text()) == {"new_knob": 0.5, "flag": False, "ratio": (0.75, 4 / 3),
                                                        "renamed": None}
    assert train_py_args(train_py)[1] == str(train_py)
    train_py.write_text("not python ((")
    with pytest.raises(RecipeError, match="cannot read train.py's arguments"):
        train_py_args(train_py)


def test_cli_recipe_check(tmp_path):
    runner = CliRunner()
    good = _recipe(tmp_path, opt="adamw", lr=1e-3, batch_size=16, img_size=64)
    result = runner.invoke(main, ["recipe", "check", str(good), "--steps", "1", "--gpus", "2",
                                  "--aug-samples", "8"])
    assert result.exit_code == 0, result.output
    assert "ok   " in result.output and "2 GPUs: global batch 32" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: convnext_atto_dog\nlearning_rate: 0.1\n")
    result = runner.invoke(main, ["recipe", "check", str(good), str(bad), "--steps", "0", "--aug-samples", "8"])
    assert result.exit_code == 1 and "FAIL" in result.output and "1 of 2 recipes failed" in result.output


@pytest.mark.parametrize("keys,message", [
    (dict(epochs="twenty"), "epochs: 'twenty' is not an int >= 1 (train.py's default: 300)"),
    (dict(epochs=0), "epochs: 0 is not an int >= 1"),
    (dict(epochs=2.5), "epochs: 2.5 is not an int >= 1"),
    (dict(batch_size=0), "batch_size: 0 is not an int >= 1 (train.py's default: 128)"),
    (dict(lr="fast"), "lr: 'fast' is not a number > 0"),
    (dict(lr=0), "lr: 0 is not a number > 0"),
    (dict(model=["a", "b"]), "model: ['a', 'b'] is not a string (train.py's default: 'resnet50')"),
    (dict(mean=[0.5, 0.5]), "mean: [0.5, 0.5] is not a list of 3 numbers (one per input channel)"),
    (dict(in_chans=1, mean=[0.5, 0.5, 0.5]), "mean: [0.5, 0.5, 0.5] is not a list of 1 numbers"),
    (dict(std=[0.5, 0, 0.5]), "std: [0.5, 0, 0.5] is not a list of 3 numbers > 0"),
    (dict(model_kwargs=[1, 2]), "model_kwargs: [1, 2] is not a mapping (train.py's default: {})"),
    (dict(model_kwargs=None), "model_kwargs: None is not a mapping"),
    (dict(img_size=-32), "img_size: -32 is not an int >= 1"),
    (dict(input_size=[3, 32]), "input_size: [3, 32] is not [channels, height, width], ints >= 1"),
    (dict(amp="yes"), "amp: 'yes' is not true or false (train.py's default: False)"),
    (dict(smoothing=1.5), "smoothing: 1.5 is not a number in [0, 1]"),
    (dict(weight_decay=float("nan")), "weight_decay: nan is not a number >= 0"),
    (dict(scale=0.5), "scale: 0.5 is not a list (train.py's default: [0.08, 1.0])"),
])
def test_bad_values_name_their_key(tmp_path, keys, message):
    with pytest.raises(RecipeError) as error:
        check_recipe(_recipe(tmp_path, **keys), steps=0, aug_samples=8)
    assert message in str(error.value)


def test_all_bad_values_are_reported_at_once(tmp_path):
    with pytest.raises(RecipeError) as error:
        check_recipe(_recipe(tmp_path, epochs=0, lr="fast", model_kwargs=[1, 2]), steps=0, aug_samples=8)
    assert all(f"{key}: " in str(error.value) for key in ("epochs", "lr", "model_kwargs"))


def test_none_default_keys_may_stay_unset(tmp_path):
    s = check_recipe(_recipe(tmp_path, lr=None, img_size=None, mean=None, std=[0.3, 0.3, 0.3]), steps=1,
                     aug_samples=8)
    assert s["data_config"]["std"] == (0.3, 0.3, 0.3) and s["lr"]["base"] > 0


def test_cli_binary_recipe_is_reported_and_the_others_checked(tmp_path):
    good = _recipe(tmp_path, opt="adamw", lr=1e-3, batch_size=16, img_size=64)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"model: convnext_atto_dog\n\x00\x01\x02")
    negative = tmp_path / "negative.yaml"
    negative.write_text("model: convnext_atto_dog\nimg_size: -32\n")
    result = CliRunner().invoke(main, ["recipe", "check", str(binary), str(nul), str(negative), str(good),
                                       "--steps", "0", "--aug-samples", "8"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"FAIL {binary}: not a UTF-8 text file (byte 0)" in result.output
    assert f"FAIL {nul}: cannot read the recipe" in result.output
    assert "img_size: -32 is not an int >= 1" in result.output
    assert f"ok   {good}" in result.output and "3 of 4 recipes failed" in result.output


def test_benchmark_runs_the_recipes_training_step(tmp_path):
    """AMP dtype, channels_last and the projection as the recipe sets them (CPU, tiny batch)."""
    import timm
    import torch

    model = timm.create_model("convnext_atto", num_classes=10)
    dtypes = []
    model.head.fc.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    result = train_steps(model, 4, 32, device=torch.device("cpu"), amp_dtype="bfloat16", channels_last=True,
                         clip_grad=1.0, steps=2, warmup=1)
    assert set(dtypes) == {torch.bfloat16} and len(dtypes) == 3
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert result["images_per_second"] > 0 and result["peak_memory"].startswith("CPU peak RSS growth")

    path = _recipe(tmp_path, opt="adamw", lr=1e-3, batch_size=64, img_size=32, epochs=3, cooldown_epochs=1)
    result = benchmark_recipe(path, gpus=4, num_images=1000, device="cpu", batch_size=2, steps=2, warmup=1)
    assert (result["batch_size"], result["img_size"], result["amp"], result["channels_last"]) == (2, 32, "off", False)
    assert result["projected_hours"] == pytest.approx(4 * 1000 / (result["images_per_second"] * 4) / 3600)


def test_cifar_recipes_project_45k_images_per_epoch():
    """The CIFAR recipes read an ImageFolder: their folder, not a dataset key, says CIFAR (was: ImageNet's 1.28 M)."""
    cifar = next(p for p in RECIPES if p.stem == "mobilenetv2_100_dog")
    assert check_recipe(cifar, steps=0, gpus=1, aug_samples=8)["lr"]["updates_per_epoch"] == 704  # 45,000 / 64
    result = benchmark_recipe(cifar, device="cpu", batch_size=2, steps=1, warmup=1)
    assert result["train_images"] == 45_000


def test_cli_recipe_check_benchmark(tmp_path):
    path = _recipe(tmp_path, opt="adamw", lr=1e-3, batch_size=64, img_size=32, amp=True, amp_dtype="bfloat16",
                   channels_last=True)
    args = ["recipe", "check", str(path), "--steps", "0", "--aug-samples", "8", "--benchmark", "--batch-size", "2",
            "--benchmark-steps", "1", "--gpus", "4"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "benchmark on cpu" in result.output
    assert "batch 2, 32², AMP bfloat16, channels_last, compile off" in result.output
    assert "img/s" in result.output and "peak memory" in result.output
    assert "projected: 2 epochs x 1,281,167 images on 4 such device(s)" in result.output
    result = CliRunner().invoke(main, [*args, "--device", "cuda:x"])
    assert result.exit_code == 2 and "device 'cuda:x' is not one of auto, cpu, cuda, cuda:N" in result.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the machine without CUDA")
def test_cli_recipe_check_benchmark_without_cuda(tmp_path):
    result = CliRunner().invoke(main, ["recipe", "check", str(_recipe(tmp_path)), "--benchmark", "--device", "cuda"])
    assert result.exit_code == 2 and "device 'cuda': torch sees no CUDA device; use --device cpu or auto" in result.output


@pytest.mark.parametrize("path", [p for p in RECIPES if p.parent.name == "imagenet"], ids=lambda p: p.stem)
def test_imagenet_recipes_use_the_fastest_measured_setting(path):
    text = path.read_text()
    recipe, header = yaml.safe_load(text), text.split("\ndevice_modules")[0]
    assert "Measured on an NVIDIA H200 (torch 2.11; batch 128" in header and "--benchmark --gpus N" in header
    if path.stem.startswith("convmixer"):  # 9x9 depthwise: channels_last -27 %, compile slower than eager NCHW
        assert not recipe.get("channels_last") and not recipe.get("torchcompile")
        assert "channels_last stays OFF on purpose" in header and "27 % slower" in header
    if path.stem.startswith("convnext"):
        assert recipe["torchcompile"] == "inductor" and recipe["channels_last"] and "4,172 img/s" in header


def test_more_cpu_steps_than_augmented_images(tmp_path):
    """--aug-samples 8 with --steps 3 (batches of 8) reuses the images instead of stacking an empty batch."""
    summary = check_recipe(_recipe(tmp_path, opt="adamw", lr=1e-3, img_size=32), steps=3, aug_samples=8, image_size=32)
    assert len(summary["cpu_steps"]) == 3
