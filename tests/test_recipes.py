import json
from pathlib import Path

import numpy as np
import PIL
import pytest
import timm
import yaml
from click.testing import CliRunner

from timm_dog.benchmark import train_steps
from timm_dog.cli import main
from timm_dog.recipes import RecipeError, benchmark_recipe, check_recipe, train_py_args, unknown_keys

RECIPES = sorted((Path(__file__).parents[1] / "recipes").rglob("*.yaml"))
BASELINES = {
    "convnext_tiny_dog": "convnext_tiny",
    "convmixer_512_dog": "convmixer_512",
    "mobilenetv2_100_dog": "mobilenetv2_100",
}


def test_the_recipes_are_there():
    names = {p.stem for p in RECIPES}
    assert {
        "convnext_tiny_dog",
        "convnext_tiny",
        "convmixer_512_dog",
        "convmixer_512",
        "convmixer_512_dog_gamma0-1",
        "convmixer_512_dog_on_only",
        "mobilenetv2_100_dog",
        "mobilenetv2_100",
    } <= names


def test_the_controls_ablation_set_differs_from_dog_only_in_model_kwargs():
    """Issue 19: ConvMixer-512 with gaussian, impulse and frozen DoG kernels, beside the DoG recipe."""
    folder = RECIPES[0].parents[1] / "imagenet"
    dog = yaml.safe_load((folder / "convmixer_512_dog.yaml").read_text())
    for name, kwargs in (
        ("gaussian", {"dog_pattern": "gaussian"}),
        ("impulse", {"dog_pattern": "impulse"}),
        ("frozen", {"dog_trainable": False}),
    ):
        control = yaml.safe_load((folder / f"convmixer_512_dog_{name}.yaml").read_text())
        assert control.pop("model_kwargs") == kwargs and control == dog


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_header_and_plugin(path):
    text = path.read_text()
    recipe = yaml.safe_load(text)
    assert recipe["device_modules"] == ["timm_dog"]
    assert not unknown_keys(recipe, train_py_args()[0])
    header = text.split("\ndevice_modules")[0]
    for needle in (
        "python train.py --config",
        "./distributed_train.sh 8",
        "torchrun --nnodes",
        "--node-rank",
        "--rdzv-endpoint",
        "GiB",
        "hours",
        "come from",
    ):
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
    path = _recipe(
        tmp_path,
        learning_rate=0.1,
        **{"drop-path": 0.1, "mixupp": 0.2},
        model_kwargs={"num_classes": 3, "dog_share": 0.5},
    )
    with pytest.raises(RecipeError) as error:
        check_recipe(path)
    text = str(error.value)
    assert "unknown key 'learning_rate' (did you mean 'lr'?)" in text
    assert "unknown key 'drop-path' (did you mean 'drop_path'?)" in text
    assert "unknown key 'mixupp' (did you mean 'mixup'?)" in text
    assert "model_kwargs 'num_classes' collides" in text


@pytest.mark.parametrize(
    "keys,match",
    [
        (dict(model_kwargs={"dog_gama": 0.3}), "did you mean 'dog_gamma'"),
        (dict(model="convnext_nope_dog"), "Unknown model"),
        (dict(pretrained=True), "would download weights"),
        (dict(opt="adamz"), "adamz"),
    ],
)
def test_what_timm_refuses_is_reported(tmp_path, keys, match):
    with pytest.raises(RecipeError, match=match):
        check_recipe(_recipe(tmp_path, **keys), steps=1, aug_samples=8)


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- lr\n")
    with pytest.raises(RecipeError, match="YAML mapping"):
        check_recipe(path)


def test_small_recipe_summary(tmp_path):
    s = check_recipe(
        _recipe(
            tmp_path, opt="adamw", lr=1e-3, batch_size=16, warmup_epochs=1, img_size=64, model_kwargs={"dog_share": 0.5}
        ),
        steps=2,
        gpus=4,
        aug_samples=16,
    )
    assert s["global_batch"] == 64 and s["lr"]["base"] == pytest.approx(1e-3)
    assert s["lr"]["start"] < s["lr"]["peak"] <= 1e-3
    assert s["data_config"]["input_size"] == (3, 64, 64)
    assert "DoG init: 12 depthwise layers" in s["dog_init"] and len(s["cpu_steps"]) == 2


def test_cli_recipe_check(tmp_path):
    runner = CliRunner()
    good = _recipe(tmp_path, opt="adamw", lr=1e-3, batch_size=16, img_size=64)
    result = runner.invoke(main, ["recipe", "check", str(good), "--steps", "1", "--gpus", "2", "--aug-samples", "8"])
    assert result.exit_code == 0, result.output
    assert "ok   " in result.output and "2 GPUs: global batch 32" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: convnext_atto_dog\nlearning_rate: 0.1\n")
    result = runner.invoke(main, ["recipe", "check", str(good), str(bad), "--steps", "0", "--aug-samples", "8"])
    assert result.exit_code == 1 and "FAIL" in result.output and "1 of 2 recipes failed" in result.output


@pytest.mark.parametrize(
    "keys,message",
    [
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
        (dict(smoothing=1.5), "smoothing: 1.5 is not a number in [0, 1)"),
        (dict(weight_decay=float("nan")), "weight_decay: nan is not a number >= 0"),
        (
            dict(scale=0.5),
            "scale: 0.5 is not [min, max] with min <= max, numbers in (0, 1] (train.py's default: [0.08, 1.0])",
        ),
    ],
)
def test_bad_values_name_their_key(tmp_path, keys, message):
    with pytest.raises(RecipeError) as error:
        check_recipe(_recipe(tmp_path, **keys), steps=0, aug_samples=8)
    assert message in str(error.value)


def test_all_bad_values_are_reported_at_once(tmp_path):
    with pytest.raises(RecipeError) as error:
        check_recipe(_recipe(tmp_path, epochs=0, lr="fast", model_kwargs=[1, 2]), steps=0, aug_samples=8)
    assert all(f"{key}: " in str(error.value) for key in ("epochs", "lr", "model_kwargs"))


def test_none_default_keys_may_stay_unset(tmp_path):
    s = check_recipe(_recipe(tmp_path, lr=None, img_size=None, mean=None, std=[0.3, 0.3, 0.3]), steps=1, aug_samples=8)
    assert s["data_config"]["std"] == (0.3, 0.3, 0.3) and s["lr"]["base"] > 0


def test_cli_binary_recipe_is_reported_and_the_others_checked(tmp_path):
    good = _recipe(tmp_path, opt="adamw", lr=1e-3, batch_size=16, img_size=64)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"model: convnext_atto_dog\n\x00\x01\x02")
    negative = tmp_path / "negative.yaml"
    negative.write_text("model: convnext_atto_dog\nimg_size: -32\n")
    result = CliRunner().invoke(
        main, ["recipe", "check", str(binary), str(nul), str(negative), str(good), "--steps", "0", "--aug-samples", "8"]
    )
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
    result = train_steps(
        model,
        4,
        32,
        device=torch.device("cpu"),
        amp_dtype="bfloat16",
        channels_last=True,
        clip_grad=1.0,
        steps=2,
        warmup=1,
    )
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
    assert (
        check_recipe(cifar, steps=0, gpus=1, aug_samples=8)["lr"]["updates_per_epoch"] == 703
    )  # 45,000 // 64: train.py drops the last partial batch
    result = benchmark_recipe(cifar, device="cpu", batch_size=2, steps=1, warmup=1)
    assert result["train_images"] == 45_000


def test_cli_recipe_check_benchmark(tmp_path):
    path = _recipe(
        tmp_path, opt="adamw", lr=1e-3, batch_size=64, img_size=32, amp=True, amp_dtype="bfloat16", channels_last=True
    )
    args = [
        "recipe",
        "check",
        str(path),
        "--steps",
        "0",
        "--aug-samples",
        "8",
        "--benchmark",
        "--batch-size",
        "2",
        "--benchmark-steps",
        "1",
        "--gpus",
        "4",
    ]
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
    assert (
        result.exit_code == 2 and "device 'cuda': torch sees no CUDA device; use --device cpu or auto" in result.output
    )


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


# ---- shipped recipes by name, recipe new, value ranges --------------------------------------------------------------


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_shipped_recipes_are_found_by_name():
    from timm_dog.recipes import resolve_recipe, shipped_recipes

    shipped = shipped_recipes()
    assert sorted(shipped) == sorted(p.stem for p in RECIPES)  # one name per file: no two stems alike
    path = shipped["convnext_tiny_dog"]
    for name in ("convnext_tiny_dog", "convnext_tiny_dog.yaml", "imagenet/convnext_tiny_dog"):
        assert resolve_recipe(name) == path
    with pytest.raises(RecipeError, match=r"no shipped recipe of that name \(did you mean convnext_tiny_dog"):
        resolve_recipe("convnext_tiny_dgo")


def test_cli_recipe_list():
    result = _cli("recipe", "list")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    assert set(p.stem for p in RECIPES) <= set(rows)
    assert rows["convnext_tiny_dog"].split()[1:4] == ["convnext_tiny_dog", "imagenet", "50"]
    assert "4.3 h on one H200" in rows["convnext_tiny_dog"] and "measured" in rows["convnext_tiny_dog"]
    assert rows["mobilenetv2_100"].split()[1:4] == ["mobilenetv2_100", "cifar10", "20"]
    assert "not measured" in rows["mobilenetv2_100"]


def test_cli_recipe_show(tmp_path):
    path = next(p for p in RECIPES if p.stem == "convnext_tiny_dog")
    result = _cli("recipe", "show", "convnext_tiny_dog")
    assert result.exit_code == 0 and result.output == path.read_text()
    out = tmp_path / "sub" / "r.yaml"
    result = _cli("recipe", "show", "convnext_tiny_dog", "--out", out)
    assert result.exit_code == 0 and out.read_text() == path.read_text() and f"wrote {out}" in result.output
    result = _cli("recipe", "show", "convnext_tiny_dog", "--out", tmp_path / "r.txt")
    assert result.exit_code == 2 and "must end in one of .yaml, .yml" in result.output
    result = _cli("recipe", "show", "nope_dog")
    assert result.exit_code == 1 and "no such file and no shipped recipe of that name" in result.output


def test_check_and_sweep_take_a_shipped_name(tmp_path):
    result = _cli("recipe", "check", "mobilenetv2_100_dog", "--steps", "0", "--aug-samples", "8", "--gpus", "1")
    assert result.exit_code == 0, result.output
    assert "ok   " in result.output and "cifar10/mobilenetv2_100_dog.yaml" in result.output
    result = _cli("recipe", "check", "mobilenetv2_100_dgo", "--steps", "0")
    assert result.exit_code == 1 and "did you mean mobilenetv2_100_dog" in result.output
    result = _cli("sweep", "mobilenetv2_100_dog", "--grid", "dog_gamma=0.1,0.3", "--out", tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == [
        "mobilenetv2_100_dog-baseline.yaml",
        "mobilenetv2_100_dog-gamma0.1.yaml",
        "mobilenetv2_100_dog-gamma0.3.yaml",
    ]


def _body(text: str) -> list:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_recipe_new_pair_differs_only_in_model_and_dog_kwargs(tmp_path):
    import difflib

    from timm.data import resolve_data_config

    from timm_dog.recipes import PROTOCOL, new_recipes, write_new_recipes

    texts = new_recipes("mobilevitv2_050_dog", tmp_path / "r", gpus=4, batch_size=64)
    dog_path, base_path = list(texts)
    assert (dog_path.name, base_path.name) == ("mobilevitv2_050_dog.yaml", "mobilevitv2_050.yaml")
    diff = [
        line
        for line in difflib.unified_diff(_body(texts[dog_path]), _body(texts[base_path]), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        "-model: mobilevitv2_050_dog",
        "-model_kwargs: {dog_gamma: [0.0, 0.5], dog_on_ratio: 0.5, dog_share: 1.0}",
        "+model: mobilevitv2_050",
    ]
    dog, base = (yaml.safe_load(t) for t in texts.values())
    assert {k: v for k, v in dog.items() if k not in ("model", "model_kwargs")} == {
        k: v for k, v in base.items() if k != "model"
    }
    # the model's own data config (mobilevitv2: 256 px, mean 0 / std 1), the protocol, the stated lr rule
    config = resolve_data_config({}, model=timm.create_model("mobilevitv2_050"))
    assert dog["input_size"] == list(config["input_size"]) == [3, 256, 256]
    assert (dog["mean"], dog["std"]) == ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert (dog["interpolation"], dog["crop_pct"]) == (config["interpolation"], config["crop_pct"])
    assert {k: dog[k] for k in PROTOCOL if k != "batch_size"} == {
        k: v for k, v in PROTOCOL.items() if k != "batch_size"
    }
    assert dog["batch_size"] == 64 and dog["num_classes"] == 1000 and dog["model_ema"] and dog["model_ema_decay"] < 1
    head = texts[dog_path].split("\ndevice_modules")[0]
    assert "lr = lr_base x global batch / lr_base_size (linear) = 0.004 x 256 / 4096 = 0.00025" in head
    for needle in (
        "python train.py --config",
        "./distributed_train.sh 4",
        "torchrun --nnodes",
        "--rdzv-endpoint",
        "Cost: not measured",
        "--benchmark",
        "come from",
        "resolve_data_config",
        "arXiv 2401.10178",
    ):
        assert needle in head, needle
    assert not (tmp_path / "r").exists()  # nothing written yet
    write_new_recipes(texts)
    assert [p.read_text() for p in texts] == list(texts.values())


def test_recipe_new_follows_the_shipped_imagenet_protocol(tmp_path):
    """The generated convnext_tiny_dog recipe is the shipped one but for the model's data config, EMA and the
    speed settings measured for ConvNeXt-T alone."""
    from timm_dog.recipes import new_recipes

    generated = yaml.safe_load(next(iter(new_recipes("convnext_tiny_dog", tmp_path).values())))
    shipped = yaml.safe_load(next(p for p in RECIPES if p.stem == "convnext_tiny_dog").read_text())
    own = {
        "img_size",
        "input_size",
        "interpolation",
        "mean",
        "std",
        "crop_pct",
        "model_kwargs",
        "model_ema",
        "model_ema_decay",
        "model_ema_warmup",
        "channels_last",
        "torchcompile",
    }
    assert {k: v for k, v in generated.items() if k not in own} == {k: v for k, v in shipped.items() if k not in own}
    assert generated["input_size"] == [3, shipped["img_size"], shipped["img_size"]]


def test_recipe_new_datasets(tmp_path, digits):
    from timm_dog.recipes import new_recipes

    texts = new_recipes("efficientnet_b0_dog", tmp_path, dataset="cifar10", epochs=20, gpus=1)
    assert [p.name for p in texts] == ["efficientnet_b0_dog_cifar10.yaml", "efficientnet_b0_cifar10.yaml"]
    recipe = yaml.safe_load(next(iter(texts.values())))
    assert (recipe["num_classes"], recipe["val_split"], recipe["epochs"], recipe["warmup_epochs"]) == (
        10,
        "validation",
        20,
        2,
    )
    assert "on 45,000 training images" in next(iter(texts.values()))
    texts = new_recipes("efficientnet_b0_dog", tmp_path, dataset=str(digits))
    recipe = yaml.safe_load(next(iter(texts.values())))
    assert (recipe["num_classes"], recipe["data_dir"], recipe["val_split"]) == (10, str(digits.resolve()), "val")
    assert f"{len(list((digits / 'train').rglob('*.png'))):,} training images" in next(iter(texts.values()))
    with pytest.raises(RecipeError, match="not imagenet, cifar10 or an ImageFolder"):
        new_recipes("efficientnet_b0_dog", tmp_path, dataset=str(tmp_path))


@pytest.mark.parametrize(
    "model,match",
    [
        ("efficientnet_b0", "efficientnet_b0 is a native model; give its twin efficientnet_b0_dog"),
        ("convnext_tiyn_dog", "'convnext_tiyn_dog' is not a \\*_dog twin. Did you mean: convnext_tiny_dog"),
        ("resnet50_dog", "'resnet50_dog' is not a \\*_dog twin"),
    ],
)
def test_recipe_new_refuses_what_is_not_a_twin(tmp_path, model, match):
    from timm_dog.recipes import new_recipes

    with pytest.raises(RecipeError, match=match):
        new_recipes(model, tmp_path)


def test_cli_recipe_new_never_overwrites(tmp_path):
    out = tmp_path / "r"
    result = _cli("recipe", "new", "efficientnet_b0_dog", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["efficientnet_b0.yaml", "efficientnet_b0_dog.yaml"]
    before = {p: p.read_text() for p in out.iterdir()}
    result = _cli("recipe", "new", "efficientnet_b0_dog", "--out", out, "--epochs", "10")
    assert result.exit_code == 1 and "exists already: recipe new never overwrites a recipe" in result.output
    assert {p: p.read_text() for p in out.iterdir()} == before
    result = _cli("recipe", "new", "efficientnet_b0_dgo", "--out", tmp_path / "s")
    assert result.exit_code == 1 and "Did you mean: efficientnet_b0_dog" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "s").exists()


FAST_FAMILIES = ("efficientnet_b0_dog", "mobilenetv3_large_100_dog", "convnext_nano_dog")


def _check_generated(model, tmp_path):
    from timm_dog.recipes import new_recipes, write_new_recipes

    paths = write_new_recipes(new_recipes(model, tmp_path))
    for path in paths:
        summary = check_recipe(path, steps=1, gpus=8, aug_samples=8)
        assert len(summary["cpu_steps"]) == 1 and summary["lr"]["base"] == pytest.approx(1e-3)  # 4e-3 x 1024 / 4096
    return paths


@pytest.mark.parametrize("model", FAST_FAMILIES)
def test_recipe_check_passes_on_generated_pairs(tmp_path, model):
    _check_generated(model, tmp_path)


def _one_twin_per_family() -> list:
    import json

    from timm_dog.models import DATA_FILE

    smallest = {}
    for name, entry in json.loads(DATA_FILE.read_text())["models"].items():
        if not name.startswith("test_") and entry["params"] < smallest.get(entry["family"], (float("inf"),))[0]:
            smallest[entry["family"]] = (entry["params"], name + "_dog")
    return sorted(name for _, name in smallest.values())


@pytest.mark.slow
@pytest.mark.parametrize("model", _one_twin_per_family())
def test_recipe_check_passes_on_one_generated_pair_per_family(tmp_path, model):
    from timm_dog.recipes import RecipeError as Refused

    try:
        _check_generated(model, tmp_path)
    except Refused as error:
        assert "train.py cannot train" in str(error)  # a refusal that says why, never a failing recipe
        pytest.skip(str(error))


def test_model_ema_decay_and_every_numeric_key_have_a_range(tmp_path):
    from timm_dog.trainpy.args import VALUE_RULES

    with pytest.raises(RecipeError) as error:
        check_recipe(
            _recipe(
                tmp_path,
                model_ema_decay=1.5,
                drop_path=1.0,
                workers=2.5,
                aug_splits=1,
                scale=[0.9, 0.1],
                opt_betas=[0.9, 1.5],
                decay_rate=0,
            ),
            steps=0,
            aug_samples=8,
        )
    text = str(error.value)
    for message in (
        "model_ema_decay: 1.5 is not a number in [0, 1) (train.py's default: 0.9998)",
        "drop_path: 1.0 is not a number in [0, 1)",
        "workers: 2.5 is not an int >= 0",
        "aug_splits: 1 is not 0 or an int >= 2",
        "scale: [0.9, 0.1] is not [min, max] with min <= max",
        "opt_betas: [0.9, 1.5] is not a list of 1 to 3 numbers in [0, 1)",
        "decay_rate: 0 is not a number > 0",
    ):
        assert message in text, message
    known = train_py_args()[0]
    numeric = {k for k, v in known.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric <= set(VALUE_RULES), sorted(numeric - set(VALUE_RULES))


@pytest.mark.slow
def test_wheel_install_outside_the_repo(tmp_path):
    """The built wheel in a fresh environment (torch and timm from this one), run from a folder outside the repo:
    the recipes are package data, `recipe new` and `recipe check` work there, LICENSE is in the wheel."""
    import os
    import site
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("hatchling", reason="builds the wheel offline: pip install hatchling")
    root = Path(__file__).parents[1]
    run = dict(capture_output=True, text=True, timeout=600)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(root),
        ],
        **run,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("timm_dog-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "timm_dog/data/recipes/imagenet/convnext_tiny_dog.yaml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    venv = tmp_path / "venv"
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)], check=True, **run
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, **run
    ).stdout.strip()
    # the wheel goes in first: with this environment's packages visible, pip would find timm-dog installed there
    # (CI installs it non-editable) and install nothing
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], **run
    )
    assert installed.returncode == 0, installed.stderr
    # then this environment's packages (torch, timm …) after the fresh one's; their .pth files (an editable
    # timm-dog) are not run
    Path(purelib, "host.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    work = tmp_path / "work"
    work.mkdir()

    def timm_dog(*args):
        result = subprocess.run([str(venv / "bin" / "timm-dog"), *args], cwd=work, env=env, **run)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    where = subprocess.run(
        [python, "-c", "import timm_dog; print(timm_dog.__file__)"], cwd=work, env=env, check=True, **run
    ).stdout
    assert where.startswith(str(venv))
    listing = timm_dog("recipe", "list")
    assert "convnext_tiny_dog" in listing and str(venv) in listing
    assert (
        timm_dog("recipe", "show", "convnext_tiny_dog")
        == (root / "recipes/imagenet/convnext_tiny_dog.yaml").read_text()
    )
    timm_dog("recipe", "new", "efficientnet_b0_dog", "--out", "r/")
    assert sorted(p.name for p in (work / "r").iterdir()) == ["efficientnet_b0.yaml", "efficientnet_b0_dog.yaml"]
    checked = timm_dog(
        "recipe", "check", "r/efficientnet_b0_dog.yaml", "r/efficientnet_b0.yaml", "--steps", "1", "--aug-samples", "8"
    )
    assert checked.count("ok   r/") == 2


def test_package_metadata_home_license_and_long_description():
    """One home in pyproject, README and model card; README images that work on a package index page (absolute);
    the Apache-2.0 text that pyproject declares."""
    import re
    import tomllib

    root = Path(__file__).parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    home = project["urls"]["Homepage"]
    assert project["urls"]["Repository"] == home and project["urls"]["Issues"].startswith(home)
    readme, card = (root / "README.md").read_text(), (root / "hub_cards" / "model_card.md").read_text()
    assert home in readme and home in card and "pypi.org/project" not in card
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme) + re.findall(r'<img[^>]+src="([^"]+)"', readme)
    assert images and all(
        src.startswith(f"https://raw.githubusercontent.com/{home.split('github.com/')[1]}/") for src in images
    ), images
    for src in images:
        assert (root / src.split("/main/", 1)[1]).is_file(), src
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (root / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.mark.slow
def test_recipe_new_benchmark_writes_the_measured_cost(tmp_path):
    from timm_dog.recipes import new_recipes

    texts = new_recipes("test_efficientnet_dog", tmp_path, gpus=4, batch_size=2, benchmark_device="cpu")
    for text in texts.values():
        cost = next(line for line in text.splitlines() if line.startswith("# Cost:"))
        assert " h on 4 x cpu for the 50 epochs (measured by recipe check --benchmark: " in cost, cost
        assert "img/s per device at batch 2" in cost
    result = _cli(
        "recipe", "new", "test_efficientnet_dog", "--out", tmp_path / "r", "--benchmark", "--device", "cuda:x"
    )
    assert result.exit_code == 1 and "cuda:x" in result.output and not (tmp_path / "r").exists()


def test_odd_batch_with_mixup_and_batches_train_py_never_runs_are_refused(tmp_path):
    """From the new-user tryout: train.py's Mixup asserts an even batch, and its loader drops the last partial batch
    (8 images in batches of 128 make no training step at all)."""
    with pytest.raises(RecipeError, match="batch_size: 3 is odd, but with mixup/cutmix"):
        check_recipe(_recipe(tmp_path, batch_size=3, mixup=0.8), steps=0, aug_samples=8)
    with pytest.raises(RecipeError, match="8 training images make no full batch of 128 × 1 GPU"):
        check_recipe(_recipe(tmp_path, batch_size=128), steps=0, gpus=1, aug_samples=8, train_images=8)


def test_an_lr_not_above_min_lr_is_refused(tmp_path):
    """A cosine schedule from an lr at or below min_lr rises instead of decaying (e.g. lr_base 4e-3 at 4096 scaled to
    a global batch of 1: 9.8e-7 < 1e-6)."""
    with pytest.raises(RecipeError, match=r"lr 1e-06 \(.*\) is not above min_lr 1e-05: the cosine schedule would not"):
        check_recipe(_recipe(tmp_path, lr=1e-6, min_lr=1e-5, sched="cosine"), steps=0, aug_samples=8)


def test_recipe_new_writes_nothing_that_recipe_check_refuses(tmp_path, digits, monkeypatch):
    """Over a grid of options (odd batches and 1 included), `new` either refuses, naming the options, or writes
    recipes that pass the check's static validation (keys, values, mixup's even batch, lr above min_lr, a full
    batch) for the same --gpus and training images; odd batches (mixup needs even ones) are refused."""
    import functools
    import itertools

    from timm_dog import recipes

    monkeypatch.setattr(recipes, "trainable_config", functools.cache(recipes.trainable_config))  # one build
    known = recipes.train_py_args()[0]
    images = {
        "imagenet": recipes.IMAGENET_TRAIN_IMAGES,
        "cifar10": 45_000,
        str(digits): len(list((digits / "train").rglob("*.png"))),
    }
    written, refused = [], []
    for dataset, batch_size, gpus, epochs in itertools.product(images, (1, 2, 3, 64, 128), (1, 2, 8), (1, 2, 50)):
        options = dict(dataset=dataset, batch_size=batch_size, gpus=gpus, epochs=epochs)
        try:
            texts = recipes.new_recipes("mobilenetv3_small_050_dog", tmp_path, **options)
        except RecipeError as error:
            assert f"--batch-size {batch_size}" in str(error) or "no full global batch" in str(error), error
            refused.append(options)
            continue
        for path, text in texts.items():
            recipe = yaml.safe_load(text)
            assert (recipe["batch_size"], recipe["epochs"]) == (batch_size, epochs)
            recipes.check_static(path, recipe, gpus, images[dataset], known)  # raises what check refuses
        written.append(options)
    assert all(o["batch_size"] % 2 == 0 for o in written) and len(written) > 50
    assert {(o["batch_size"], o["gpus"]) for o in refused} >= {(1, 1), (3, 8), (1, 8), (3, 1)}
    with pytest.raises(
        RecipeError,
        match=r"(?s)would refuse the recipe of --batch-size 1, --gpus 1.*"
        r"batch_size: 1 is odd, but with mixup/cutmix",
    ):
        recipes.new_recipes("mobilenetv3_small_050_dog", tmp_path, batch_size=1, gpus=1)


def test_recipe_check_plans_the_runs_a_comparison_needs(tmp_path):
    """--detect Δ --run-std σ (or an earlier report.json's run std): runs per arm (stats.runs_needed) and GPU-hours
    from the recipe's Cost line, for the recipe and as many runs of its baseline."""
    from timm_dog.recipes import cost_of, plan_runs
    from timm_dog.stats import runs_needed

    runner = CliRunner()
    good = _recipe(tmp_path, opt="adamw", lr=1e-3, batch_size=16, img_size=64)
    costed = tmp_path / "costed.yaml"
    cost = "# Cost: 4.3 h on one H200 for the 50 epochs with torch.compile, 6.3 h eager\n"
    costed.write_text(cost + good.read_text())
    assert cost_of(costed.read_text()) == {
        "hours": 4.3,
        "gpus": 1,
        "line": "4.3 h on one H200 for the 50 epochs with torch.compile, 6.3 h eager",
    }
    assert cost_of("# Cost: 2.5 h on 8 x NVIDIA H100 for the 3 epochs\nmodel: x\n")["gpus"] == 8
    assert cost_of("# Cost: not measured (estimate: about 0.3 GPU-hours per run)\n") is None
    plan = plan_runs(costed, 0.57, 0.2)
    assert plan["runs_per_arm"] == runs_needed(0.57, 0.2) == 5 and plan["gpu_hours"] == pytest.approx(2 * 5 * 4.3)
    result = runner.invoke(
        main,
        ["recipe", "check", str(costed), "--steps", "0", "--aug-samples", "8", "--detect", "0.57", "--run-std", "0.2"],
    )
    assert result.exit_code == 0, result.output
    assert (
        "plan: detecting Δ = +0.57 points at 80 % power (α 0.05, two-sided) with a run std of 0.2 points "
        "(given) takes 5 runs per arm, 10 runs with the baseline: 43 GPU-hours (4.3 h on one GPU per run"
        in result.output
    )
    report = tmp_path / "report.json"  # an earlier report: the run std pooled over its arms with 2+ runs
    report.write_text(
        json.dumps({"pairs": [{"model": "m", "settings": "", "arm": "dog", "comparison": {"run_std": [0.3, 0.4]}}]})
    )
    result = runner.invoke(
        main,
        [
            "recipe",
            "check",
            str(good),
            "--steps",
            "0",
            "--aug-samples",
            "8",
            "--detect",
            "-1",
            "--run-std",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        f"with a run std of {np.sqrt(0.125):.3g} points (pooled over the 2 arms with 2+ runs in {report}) takes "
        f"{runs_needed(1, np.sqrt(0.125))} runs per arm; GPU-hours unknown" in result.output
    )
    for args, message in (
        (["--detect", "0.5"], "--detect and --run-std go together"),
        (["--detect", "0", "--run-std", "0.2"], "0 cannot be detected"),
        (["--detect", "nan", "--run-std", "0.2"], "a Δ top-1 is at most 100 points"),
        (["--detect", "1e9", "--run-std", "0.2"], "a Δ top-1 is at most 100 points"),
        (["--detect", "0.5", "--run-std", "-1"], "a finite number of points >= 0"),
        (["--detect", "0.5", "--run-std", str(tmp_path / "none.json")], "cannot read the run std"),
    ):
        result = runner.invoke(main, ["recipe", "check", str(good), "--steps", "0", *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
