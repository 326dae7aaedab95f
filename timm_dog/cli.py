"""The ``timm-dog`` command line (click): thin wrappers over the library."""
from __future__ import annotations

import difflib
import signal
import threading
import warnings
from pathlib import Path

import click

from .constants import CALIBRATION_IMAGES, EXPORTER, OPSET, SEED_MAX, SEED_MIN  # torch, timm … are imported by the commands
from .outputs import JSON, OutputError, check_output, figure_suffixes, write_text

GAMMA_HELP = "γ: a number in [0, 1), or a range LOW,HIGH sampled per kernel"


class GammaType(click.ParamType):
    """'0.3' -> 0.3; '0,0.5' -> (0.0, 0.5)."""

    name = "gamma"

    def convert(self, value, param, ctx):
        from .dog import check_gamma

        if isinstance(value, (float, tuple)):
            return value
        try:
            parts = [float(p) for p in str(value).replace(":", ",").split(",")]
            return check_gamma(parts[0] if len(parts) == 1 else tuple(parts))
        except ValueError as error:
            self.fail(f"{value!r}: {error}" if "gamma" in str(error) else f"{value!r} is not {GAMMA_HELP}", param, ctx)


class OutputPath(click.Path):
    """An output file ending in one of ``suffixes`` (a tuple, or a function giving one), or a folder: checked
    by :func:`timm_dog.outputs.check_output` while the command line is parsed, before any work."""

    def __init__(self, suffixes=None, folder=False):
        super().__init__(file_okay=not folder, dir_okay=folder, path_type=Path)
        self.suffixes, self.folder = suffixes, folder

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        try:
            return check_output(path, self.suffixes() if callable(self.suffixes) else self.suffixes, self.folder)
        except OutputError as error:
            self.fail(str(error), param, ctx)


def _dog_options(f):
    f = click.option("--seed", type=click.IntRange(SEED_MIN, SEED_MAX), default=None,
                     help="Seed for bit-identical kernels, in [-2**63, 2**64 - 1] (default: torch's RNG).")(f)
    f = click.option("--scale", default="paper", show_default=True,
                     help="'paper', 'match' (native init's std) or a positive multiplier.")(f)
    f = click.option("--share", type=float, default=1.0, show_default=True,
                     help="Fraction of each layer's kernels that get DoG.")(f)
    f = click.option("--on-ratio", type=float, default=0.5, show_default=True,
                     help="Probability that a kernel is on-centre.")(f)
    return click.option("--gamma", type=GammaType(), default="0,0.5", show_default=True, help=GAMMA_HELP)(f)


def _device_option(f):
    return click.option("--device", default="auto", show_default=True,
                        help="auto (CUDA when torch sees one, else the CPU), cpu, cuda or cuda:N; for an .onnx "
                             "SOURCE, onnxruntime's CUDA or CPU provider.")(f)


def _dog_args(gamma, on_ratio, share, scale, seed) -> dict:
    from .init import check_dog_args

    try:
        scale = float(scale)
    except ValueError:
        pass
    try:
        return check_dog_args(gamma, on_ratio, share, scale, seed)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _std(weight) -> float:
    return weight.detach().float().std().item()


def _create(name: str, **kwargs):
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See `timm-dog list`."
        raise click.UsageError(f"unknown model {name!r}.{hint}")
    try:
        return timm.create_model(name, **kwargs)
    except (ValueError, RuntimeError, TypeError) as error:
        raise click.ClickException(f"could not create {name}: {error}") from None


REFUSALS = (ValueError, OSError)  # how the library refuses: RecipeError, PushError, ExportError, OutputError, …


def _message(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:  # "x: Permission denied", not "[Errno 13] …"
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return str(error)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class _Main(click.Group):
    """Every command runs here: a refusal (ValueError, OSError) becomes one line and exit status 1, and SIGTERM
    interrupts like Ctrl-C (KeyboardInterrupt), so every ``finally`` runs and partial files are removed."""

    def invoke(self, ctx):
        main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there
        previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `timm-dog list | head`: click's own quiet exit
            raise
        except REFUSALS as error:
            raise click.ClickException(_message(error)) from None
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _skipped_lines() -> list:
    """One line per family of models that could not load on the installed timm (imports timm)."""
    import timm

    from .models import SKIPPED

    return [f"skipped on timm {timm.__version__}: the {family} models and their twins ({reason})"
            for family, reason in SKIPPED.items()]


def _version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    import timm
    import torch

    from . import __version__

    click.echo(f"timm-dog {__version__} (timm {timm.__version__}, torch {torch.__version__})")
    for line in _skipped_lines():
        click.echo(line)
    ctx.exit()


@click.group(cls=_Main)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Show the versions of timm-dog, timm and torch, and any family skipped, and exit.")
def main():
    """DoG (Difference-of-Gaussians) init for depthwise convolutions in timm models."""


@main.command("list")
@click.argument("pattern", default="*_dog")
@click.option("--table", is_flag=True, help="A Markdown table per family (timm module), with counts.")
def list_models(pattern, table):
    """List models in timm's registry matching PATTERN (default: every *_dog model)."""
    from importlib.metadata import version

    from . import scan

    names = None if table else scan.committed_twins(pattern, version("timm"))  # without importing timm
    if names is None:
        import timm

        names = timm.list_models(pattern)
        for line in _skipped_lines():
            click.echo(line, err=True)
    if not names:
        raise click.ClickException(f"no model matches {pattern!r}")
    click.echo(scan.family_table(names) if table else "\n".join(names))


@main.command("scan")
@click.option("--out", "-o", type=OutputPath(JSON), default=None,
              help="JSON file to write [default: where the twins are read from, in the user cache].")
def scan_models(out):
    """Scan the installed timm for depthwise models: the list that decides which *_dog twins exist."""
    import timm

    from . import scan

    from .progress import progress

    default = scan.user_dir() / scan.data_name(timm.__version__)
    out = out or check_output(default, JSON)
    names = scan.entrypoints()
    with progress(total=len(names), desc=f"scanning timm {timm.__version__} on the meta device", unit="model") as bar:
        data = scan.scan(names, progress=lambda name: bar.update(1))
    scan.write(data, out)
    found, families = len(data["models"]), len({entry["family"] for entry in data["models"].values()})
    click.echo(f"{found} models with shapeable depthwise convs in {families} families; "
               f"{len(data['exceptions'])} exceptions; {data['scanned']} scanned in {data['seconds']} s")
    if out.resolve() == default.resolve():
        click.echo(f"wrote {out}: the next process that imports timm registers its {found} twins")
    else:
        click.echo(f"wrote {out}; twins are read from {default}: copy it there to use it")


@main.command()
@click.argument("model")
@_dog_options
def inspect(model, gamma, on_ratio, share, scale, seed):
    """Each depthwise layer of MODEL: kernel, channels, native init std, and what DoG would set."""
    import timm

    from .init import depthwise_weights, dog_init_
    from .models import base_of

    args = _dog_args(gamma, on_ratio, share, scale, seed)
    base = base_of(model) if timm.is_model(base_of(model)) else model
    net = _create(base)
    native = {name: _std(weight) for name, weight in depthwise_weights(net).items()}
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            report = dog_init_(net, **args)
        except ValueError as error:
            raise click.ClickException(f"{model}: {error}") from None
    click.echo(f"{model} (native init from {base}): {sum(p.numel() for p in net.parameters()):,} parameters")
    header = f"{'layer':<36} {'kernel':>6} {'channels':>8} {'native std':>10} {'DoG set':>7} {'std after':>9}"
    click.echo(header)
    click.echo("-" * len(header))
    for layer in report.layers:
        after = _std(net.get_submodule(layer.name).weight)
        click.echo(
            f"{layer.name:<36} {'x'.join(map(str, layer.kernel_size)):>6} {layer.kernels:>8} "
            f"{native[layer.name]:>10.4f} {layer.dog_kernels:>7} {after:>9.4f}"
        )
    click.echo(str(report) if report.layers else f"{model}: no depthwise convolution to initialize")


@main.command()
@click.option("--kernel-size", "-k", type=int, default=7, show_default=True, help="Kernel size (parameter mode).")
@click.option("--gammas", default="0.1,0.2,0.3,0.4,0.5", show_default=True, help="Comma-separated γ, one column each.")
@click.option("--model", default=None, help="Draw N random depthwise kernels of this created model instead.")
@click.option("--num", "-n", type=int, default=50, show_default=True, help="Kernels to draw from --model.")
@_dog_options
@click.option("--pattern", default="dog", show_default=True,
              help="dog, or a control: gaussian, impulse, box; several (comma-separated) side by side.")
@click.option("--out", "-o", type=OutputPath(figure_suffixes), default=Path("dog_kernels.png"), show_default=True)
def show(kernel_size, gammas, model, num, gamma, on_ratio, share, scale, seed, pattern, out):
    """Draw DoG kernels to a PNG: on/off rows for several γ, or kernels of a real --model."""
    import torch

    from .dog import check_gamma, check_pattern
    from .init import depthwise_kernels

    args = _dog_args(gamma, on_ratio, share, scale, seed)  # checked in both modes
    try:
        patterns = [check_pattern(p) for p in pattern.split(",")]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--pattern") from None
    twice = next((p for i, p in enumerate(patterns) if p in patterns[:i]), None)
    if twice:
        raise click.BadParameter(f"{pattern!r}: {twice} is given twice; give each pattern once",
                                 param_hint="--pattern")
    if model is None:
        try:
            values = [check_gamma(float(g)) for g in gammas.split(",")]
        except ValueError as error:
            raise click.BadParameter(f"{gammas!r}: {error}", param_hint="--gammas") from None
        from .plots import plot_dog_grid, plot_patterns

        try:
            if len(patterns) > 1:
                path = plot_patterns(kernel_size, values, patterns, out)
            else:
                path = plot_dog_grid(kernel_size, values, out, patterns[0])
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--kernel-size") from None
        what = (f"on-centre {', '.join(patterns)}" if len(patterns) > 1
                else f"on/off {'DoG' if patterns[0] == 'dog' else patterns[0]}")
        click.echo(f"wrote {path}: {what} kernels, k={kernel_size}, γ={', '.join(f'{g:g}' for g in values)}")
        return
    if len(patterns) > 1:
        raise click.BadParameter(f"{pattern!r}: give one pattern with --model", param_hint="--pattern")
    if num < 1:
        raise click.BadParameter("must be >= 1", param_hint="--num")
    args["pattern"] = patterns[0]
    kwargs = {f"dog_{k}": v for k, v in args.items()} if model.endswith("_dog") else {}
    net = _create(model, **kwargs)
    kernels = depthwise_kernels(net)
    if not kernels:
        raise click.ClickException(f"{model} has no depthwise convolution")
    size = max(kernels, key=lambda s: len(kernels[s]))
    pool = kernels[size]
    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    picked = pool[torch.randperm(len(pool), generator=generator)[:num]]
    from .plots import plot_kernels

    title = f"{model}: {len(picked)} random depthwise {size[0]}x{size[1]} kernels"
    if kwargs and args["share"] == 0:
        title += f" (share 0: all native, no {'DoG' if args['pattern'] == 'dog' else args['pattern']} kernels)"
    elif kwargs:
        title += f" (share {args['share']:g}, γ {args['gamma']}" + (
            f", pattern {args['pattern']})" if args["pattern"] != "dog" else ")")
    path = plot_kernels(picked, out, title=title)
    click.echo(f"wrote {path}: {title}")


@main.command()
@click.option("--out", "-o", type=OutputPath(folder=True), default=Path("timm-dog-demo"), show_default=True)
@click.option("--model", default="convnext_atto_dog", show_default=True, help="A *_dog model; its base is the baseline.")
@click.option("--epochs", type=click.IntRange(1), default=8, show_default=True)
@click.option("--img-size", type=click.IntRange(32), default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out, model, epochs, img_size, seed):
    """Train MODEL and its native-init twin on scikit-learn's real digits; save figures and a summary."""
    import timm

    if not model.endswith("_dog") or not timm.is_model(model):
        raise click.BadParameter(f"{model!r} is not a *_dog model (see `timm-dog list`)", param_hint="--model")
    from .demo import run_demo

    summary = run_demo(out, model, epochs=epochs, img_size=img_size, seed=seed, echo=click.echo)
    click.echo(f"\n{'model':<24} {'top-1 %':>8} {'val loss':>9} {'seconds':>8}")
    for run in summary["runs"]:
        click.echo(f"{run['model']:<24} {run['top1']:>8.2f} {run['loss']:>9.4f} {run['seconds']:>8.1f}")
    click.echo(f"\nfigures and summary.json in {out}/")


@main.group()
def recipe():
    """Recipes for timm's train.py."""


@recipe.command("list")
def recipe_list():
    """The recipes shipped with timm-dog: name, model, dataset, epochs and cost (where measured)."""
    from .recipes import describe_shipped

    rows = describe_shipped()
    width = max(len(r["name"]) for r in rows)
    model_width = max(len(str(r["model"])) for r in rows)
    click.echo(f"{'name':<{width}}  {'model':<{model_width}}  {'dataset':<8}  {'epochs':>6}  cost")
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['model']:<{model_width}}  {r['dataset']:<8}  {r['epochs']:>6}  {r['cost']}")
    click.echo(f"\n`timm-dog recipe show NAME` prints one, `--out FILE` writes it for train.py --config; "
               f"they are in {rows[0]['path'].parents[1]}")


@recipe.command("show")
@click.argument("name")
@click.option("--out", "-o", type=OutputPath((".yaml", ".yml")), default=None,
              help="Write the recipe to this file (e.g. for train.py --config) instead of printing it.")
def recipe_show(name, out):
    """Print the recipe NAME (a shipped recipe's name, see `recipe list`, or a file), or write it to --out."""
    from .recipes import resolve_recipe

    text = resolve_recipe(name).read_text(encoding="utf-8")
    if out is None:
        click.echo(text, nl=False)
        return
    write_text(out, text)
    click.echo(f"wrote {out}: python train.py --config {out} --data-dir DATA_DIR (from a clone of timm)")


@recipe.command("new")
@click.argument("model")
@click.option("--dataset", default="imagenet", show_default=True,
              help="imagenet, cifar10, or the path of an ImageFolder with train/<class>/ and validation/<class>/.")
@click.option("--epochs", type=click.IntRange(1), default=50, show_default=True)
@click.option("--gpus", type=click.IntRange(1), default=8, show_default=True,
              help="GPUs the launch commands and the header's global batch and lr are written for.")
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True, help="Per GPU.")
@click.option("--out", "-o", type=OutputPath(folder=True), required=True,
              help="Folder for the two recipes (created; existing recipes are never overwritten).")
@click.option("--benchmark", is_flag=True,
              help="Measure the cost (recipe check --benchmark on --device) and write it in the headers.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or cuda:N.")
def recipe_new(model, dataset, epochs, gpus, batch_size, out, benchmark, device):
    """Write a DoG recipe for the twin MODEL and its native-init baseline (the paper's 50-epoch protocol, the
    model's own data config); the two differ only in the model and the DoG kwargs."""
    from .recipes import new_recipes, write_new_recipes

    texts = new_recipes(model, out, dataset=dataset, epochs=epochs, gpus=gpus, batch_size=batch_size,
                        benchmark_device=device if benchmark else None)
    paths = write_new_recipes(texts)
    click.echo(f"wrote {paths[0]} and its baseline {paths[1]}")
    click.echo(f"check them before booking GPUs: timm-dog recipe check {' '.join(map(str, paths))} --gpus {gpus}")


@recipe.command("check")
@click.argument("files", nargs=-1, required=True)
@click.option("--steps", type=click.IntRange(0), default=2, show_default=True, help="CPU training steps to run.")
@click.option("--gpus", type=click.IntRange(1), default=8, show_default=True,
              help="GPUs (world size) for the effective batch, lr and schedule.")
@click.option("--train-py", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Validate keys against this train.py instead of the list kept here.")
@click.option("--aug-samples", type=click.IntRange(8), default=2000, show_default=True,
              help="Real images pushed through the train transform.")
@click.option("--benchmark", is_flag=True,
              help="Also time real training steps (recipe's batch, AMP, layout, compile) on --device.")
@click.option("--num-images", type=click.IntRange(1), default=None,
              help="Training images per epoch (default: ImageNet-1k's 1,281,167; 45,000 for CIFAR recipes).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Benchmark at this batch instead of the recipe's.")
@click.option("--benchmark-steps", type=click.IntRange(1), default=10, show_default=True, help="Timed steps.")
@click.option("--detect", type=float, default=None, metavar="POINTS",
              help="Plan: the runs per arm (and GPU-hours) that detect this Δ top-1 at 80 % power; needs --run-std.")
@click.option("--run-std", "run_std", default=None, metavar="POINTS|REPORT_JSON",
              help="For --detect: the std of one run's top-1 in points, or an earlier report.json to take it from.")
def recipe_check(files, steps, gpus, train_py, aug_samples, benchmark, num_images, device, batch_size,
                 benchmark_steps, detect, run_std):
    """Validate FILES (recipe files or shipped recipes' names) and build what train.py would build from them; run a
    few CPU steps (and, with --benchmark, time training steps on this machine's device and project the recipe's
    hours; with --detect, plan the runs per arm that a comparison of inits needs)."""
    from .recipes import RecipeError, check_recipe, plan_runs, resolve_recipe

    if (detect is None) != (run_std is None):
        raise click.UsageError("--detect and --run-std go together: the Δ to detect and the spread of one run's top-1")
    if detect is not None:
        run_std, std_from = _run_std(run_std)
        if detect == 0:
            raise click.BadParameter("0 cannot be detected: give the smallest Δ top-1 (points) that matters",
                                     param_hint="--detect")

    if benchmark:
        from .benchmark import describe
        from .recipes import benchmark_recipe
        from .runtime import resolve_device

        try:
            resolve_device(device)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--device") from None
    failed = 0
    for name in files:
        try:
            path = resolve_recipe(name)
            s = check_recipe(path, steps=steps, gpus=gpus, train_py=train_py, aug_samples=aug_samples,
                             train_images=num_images)
        except RecipeError as error:
            failed += 1
            click.echo(f"FAIL {error}\n", err=True)
            continue
        lr = s["lr"]
        click.echo(
            f"ok   {path}\n"
            f"     model {s['model']} {s['model_kwargs'] or ''}: {s['parameters']:,} parameters; {s['dog_init']}\n"
            f"     data {s['data_config']['input_size']} {s['data_config']['interpolation']} "
            f"crop {s['data_config']['crop_pct']}; train transform ran on {s['transform_images']} real images\n"
            f"     {s['optimizer']}, {s['epochs']} epochs x {lr['updates_per_epoch']} updates = {lr['steps']:,} steps; "
            f"lr {lr['base']:.3g} (warmup {lr['warmup']} from {lr['start']:.3g}, peak reached {lr['peak']:.3g}, "
            f"final {lr['final']:.3g})\n"
            f"     {s['gpus']} GPUs: global batch {s['global_batch']}; mixup/cutmix {'on' if s['mixup'] else 'off'}; "
            f"loss {s['loss']}; activations ~{s['activation_gib_per_gpu']} GiB per GPU\n"
            f"     CPU steps: loss {s['cpu_steps']}; keys checked against {s['train_py_args_from']}\n"
            + (_plan_line(plan_runs(path, detect, run_std), std_from) if detect is not None else "")
        )
        if benchmark:
            try:
                result = benchmark_recipe(path, gpus, num_images, device, batch_size, benchmark_steps)
            except RuntimeError as error:  # e.g. CUDA out of memory
                failed += 1
                click.echo(f"FAIL {path}: benchmark: {str(error).splitlines()[0]} (try a smaller --batch-size)\n",
                           err=True)
                continue
            click.echo("\n".join(f"     {line}" for line in describe(result).splitlines()) + "\n")
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} recipes failed")


class _DefaultGroup(click.Group):
    """A group whose first argument, when it is not a sub-command, goes to the default one."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["grid", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_DefaultGroup)
def sweep():
    """γ × share grids: `sweep BASE.yaml` writes them, `sweep collect DIR…` gathers the results."""


@sweep.command("grid")
@click.argument("base")
@click.option("--grid", "grid_specs", multiple=True, metavar="KEY=V1,V2,…",
              help="A dog_* kwarg and its values; repeat for more axes. Default: the CIFAR study's γ × share.")
@click.option("--out", "-o", type=OutputPath(folder=True), default=Path("sweep"), show_default=True)
@click.option("--print-commands", is_flag=True, help="Also print the train.py command of every point.")
@click.option("--gpus", type=click.IntRange(1), default=1, show_default=True, help="GPUs per run, for the commands.")
def sweep_grid(base, grid_specs, out, print_commands, gpus):
    """Write one recipe per grid point of BASE (a *_dog recipe file or a shipped recipe's name), plus its
    native-init baseline."""
    from .recipes import RecipeError, resolve_recipe
    from .sweep import DEFAULT_GRID, parse_grid, train_commands, write_sweep

    try:
        grid = parse_grid(grid_specs) if grid_specs else DEFAULT_GRID
        paths = write_sweep(resolve_recipe(base), grid, out)
    except (ValueError, RecipeError) as error:
        raise click.UsageError(str(error)) from None
    axes = " x ".join(f"{k} ({len(v)})" for k, v in grid.items())
    click.echo(f"wrote {len(paths)} recipes to {out}/: {axes} + baseline")
    if print_commands:
        click.echo("\n".join(train_commands(paths, gpus)))


@sweep.command("collect")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", type=OutputPath(folder=True), default=Path("sweep-results"), show_default=True)
def sweep_collect(dirs, out):
    """Gather train.py's summary.csv files under DIRS into tables (CSV, Markdown) and figures: per recipe, a heatmap
    of dog_gamma × dog_share, or a bar chart when they do not both vary; each cell the mean ± std over its seeds."""
    from .sweep import collect, write_results

    paths = write_results(collect(dirs), out)
    click.echo(paths["markdown"].read_text())
    click.echo("wrote " + ", ".join(str(p) for p in [paths["csv"], paths["cells"], paths["markdown"],
                                                      *paths["figures"]]))


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--checkpoint", "checkpoints", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Weights for a model-name SOURCE (train.py checkpoint or safetensors); once per SOURCE, in order.")
@click.option("--json", "json_out", type=OutputPath(JSON), default=None,
              help="Write the numbers (centre_surround_fraction, surround_antagonism …), one entry per SOURCE, to "
                   "this JSON file.")
@click.option("--out", "-o", type=OutputPath(figure_suffixes), default=None,
              help="Cluster figure (first SOURCE, most common kernel size); one per SOURCE with a suffix.")
@click.option("--seed", type=int, default=0, show_default=True, help="k-means seed.")
@click.option("--fit-threshold", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="DoG-fit correlation above which a kernel counts as DoG-like.")
@click.option("--unfused", is_flag=True,
              help="Measure a re-parameterizable model's (MobileOne, FastViT, RepViT …) training-time branches "
                   "instead of the fused kernels that run at inference (the default).")
@_device_option
def analyze(sources, checkpoints, json_out, out, seed, fit_threshold, unfused, device):
    """Cluster the depthwise kernels of SOURCES (k-means, k = 3) as in the paper, and score their DoG fit and
    surround antagonism (antag.: opposite-sign surround mass / centre-sign mass; DoG 1, gaussian/impulse/box 0). Each
    SOURCE is labelled by its --checkpoint (or its name without one)."""
    import json

    from .analysis import analyze_model, public
    from .plots import plot_clusters
    from .runtime import resolve_device
    from .sources import load_model

    if checkpoints and len(checkpoints) != len(sources):
        raise click.BadParameter(f"give one --checkpoint per SOURCE ({len(sources)}), or none",
                                 param_hint="--checkpoint")
    try:
        device = resolve_device(device)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--device") from None
    onnx_sources = [source for source in sources if source.endswith(".onnx")]
    if onnx_sources:
        raise click.BadParameter(f"{onnx_sources[0]}: analyze reads the kernels of a torch model; give a model name "
                                 f"(+ --checkpoint), hf-hub: or local-dir:, not an .onnx file", param_hint="SOURCES")
    given = list(zip(sources, checkpoints or [None] * len(sources)))
    labels = [checkpoint or source for source, checkpoint in given]
    twice = next((label for label in labels if labels.count(label) > 1), None)
    if twice:
        raise click.BadParameter(f"{twice} is given twice: each SOURCE (or --checkpoint) is analysed once",
                                 param_hint="SOURCES")
    results = {}
    width = max(28, *map(len, labels))
    header = f"{'source':<{width}} {'kernel':>6} {'kernels':>8} {'excit.':>7} {'inhib.':>7} {'other':>7} " \
             f"{'c-s frac':>8} {'DoG fit>' + format(fit_threshold, 'g'):>10} {'antag.':>7}"
    for i, ((source, checkpoint), label) in enumerate(zip(given, labels)):
        try:
            model, weights = load_model(source, checkpoint)
            model = model.to(device)
            result = analyze_model(model, seed=seed, fit_threshold=fit_threshold, fused=not unfused)
        except (ValueError, RuntimeError) as error:
            raise click.ClickException(_named(source, error)) from None
        if i == 0:  # the table starts once there is a row to show, so that an error stays one line
            if unfused:
                click.echo("--unfused: re-parameterizable models are measured in their training-time branches, "
                           "not in the fused kernels that run at inference")
            click.echo(header)
            click.echo("-" * len(header))
        results[label] = {"source": source, "checkpoint": checkpoint, "weights": weights.to_dict(),
                          **public(result)}
        for size, s in result["sizes"].items():
            f = s["fractions"]
            click.echo(f"{label:<{width}} {size:>6} {s['kernels']:>8} {f['excitatory-centre']:>7.3f} "
                       f"{f['inhibitory-centre']:>7.3f} {f['other']:>7.3f} {s['centre_surround_fraction']:>8.3f} "
                       f"{s['dog_fit_above']:>10.3f} {s['surround_antagonism']:>7.3f}")
        if result["fused"]:
            click.echo(f"  {label}: re-parameterizable: the fused kernels, as they run at inference (timm's "
                       f"reparameterize_model on a copy); --unfused measures the training-time branches")
        if out:
            size, s = max(result["sizes"].items(), key=lambda item: item[1]["kernels"])
            path = out if i == 0 else out.with_name(f"{out.stem}_{i}{out.suffix}")
            kind = "fused " if result["fused"] else ""
            plot_clusters(s["_cluster"]["clusters"], s["_kernels"], s["_cluster"]["assignment"], path,
                          title=f"{label}: {size} {kind}depthwise kernels, k-means clusters")
            click.echo(f"wrote {path}")
    if json_out:
        write_text(json_out, json.dumps(results, indent=2))
        click.echo(f"wrote {json_out}")


def _named(source: str, error) -> str:
    """The error's message, led by the SOURCE it concerns unless it names it already."""
    return str(error) if source in str(error) else f"{source}: {error}"


def _threads_option(f):
    return click.option("--threads", type=click.IntRange(1), default=None,
                        help="CPU threads for inference: torch's, or the ONNX file's session's "
                             "(default: the physical cores).")(f)


def _load(source, checkpoint=None, device="auto", amp=None, checkpoint_option="--checkpoint", threads=None,
          use_ema=False):
    from .runtime import load_classifier

    if threads and not source.endswith(".onnx"):  # an .onnx file's session takes them itself
        import torch

        torch.set_num_threads(threads)
    try:
        classifier = load_classifier(source, checkpoint, device, amp, threads, use_ema)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(_named(source, str(error).replace("--checkpoint", checkpoint_option))) from None
    if not checkpoint and not source.endswith(".onnx") and not source.startswith(("hf-hub:", "local-dir:")):
        click.echo(f"note: {source} has no trained weights here (a fresh init): give {checkpoint_option}, "
                   f"hf-hub: or local-dir: for a trained model", err=True)
    return classifier


@main.command()
@click.argument("source")
@click.option("--out", "-o", type=OutputPath((".onnx",)), required=True,
              help="The .onnx file; --fp16/--int8 add <stem>_fp16.onnx / <stem>_int8.onnx beside it. Each is "
                   "written as a hidden .NAME.partial beside it until verified; one left by a killed run (kill -9) "
                   "is removed by the next export to the same --out.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Weights for a model-name SOURCE (train.py checkpoint or safetensors).")
@click.option("--opset", type=click.IntRange(17, 23), default=OPSET, show_default=True,
              help="ONNX opset; 20 and later write GELU as one Gelu node, which onnxruntime runs fastest.")
@click.option("--exporter", type=click.Choice(["dynamo", "torchscript"]), default=EXPORTER, show_default=True,
              help="torch.onnx exporter; dynamo falls back to TorchScript when it fails, and says why.")
@click.option("--simplify/--no-simplify", default=True, show_default=True,
              help="Constant folding and graph clean-up (onnxscript's optimizer).")
@click.option("--fp16", is_flag=True, help="Also write an fp16 model (fp32 inputs and outputs).")
@click.option("--int8", "int8_dir", type=click.Path(exists=True, file_okay=False), default=None, metavar="DIR",
              help="Also write a static int8 (QDQ) model calibrated on images of DIR (of DIR/train when DIR "
                   "holds split folders: train/, val/, …).")
@click.option("--calibration-images", type=click.IntRange(1), default=CALIBRATION_IMAGES, show_default=True,
              metavar="N", help="int8 calibration on at most N images of DIR, drawn evenly over its (class) folders.")
@click.option("--verify-images", type=click.Path(exists=True, file_okay=False), default=None, metavar="DIR",
              help="Images for the PyTorch-vs-onnxruntime check (default: scikit-learn's two photos).")
@click.option("--device", default="auto", show_default=True,
              help="Where the check runs: PyTorch on auto (CUDA when torch sees one, else the CPU), cpu, cuda or "
                   "cuda:N (TF32 off), against onnxruntime's CUDA provider there when onnxruntime-gpu is installed, "
                   "else its CPU one. The file written is the same on every device.")
@click.option("--json", "json_out", type=OutputPath(JSON), default=None,
              help="Write the export and verification report here.")
def export(source, out, checkpoint, opset, exporter, simplify, fp16, int8_dir, calibration_images, verify_images,
           device, json_out):
    """Export SOURCE to ONNX with its preprocessing as metadata; verify it against PyTorch on real images."""
    from .onnx import ExportError, export_onnx
    from .runtime import resolve_device
    from .sources import load_model
    from .trainpy.checkpoints import published_architecture

    if source.endswith(".onnx"):
        raise click.UsageError("SOURCE is already an ONNX file; give a model name, hf-hub: or local-dir:")
    device = resolve_device(device)  # before the model is loaded; an error is one line (see _Main)
    try:
        model, _ = load_model(source, checkpoint)
        result = export_onnx(
            model, out, opset=opset, dynamo=exporter == "dynamo", simplify=simplify, fp16=fp16,
            int8_calibration=int8_dir, calibration_images=calibration_images, verify_images=verify_images,
            device=device,
            architecture=published_architecture(model.pretrained_cfg.get("architecture", source)), report=json_out,
            log=click.echo,
        )
    except ExportError as error:
        raise click.ClickException(f"{error}; no file was written") from None
    except (ValueError, RuntimeError) as error:
        raise click.ClickException(_named(source, error)) from None
    for precision, path in result.files.items():
        click.echo(f"wrote {path} ({precision}, {result.exporter} exporter, opset {opset}, "
                   f"{path.stat().st_size / 1e6:.1f} MB)")
    if json_out:
        click.echo(f"wrote {json_out}")


@main.command()
@click.argument("source")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Weights for a model-name SOURCE.")
@click.option("--top-k", "-k", type=click.IntRange(1), default=5, show_default=True)
@click.option("--batch-size", "-b", type=click.IntRange(1), default=32, show_default=True,
              help="Images per batch; each batch is printed as soon as it has run.")
@_device_option
@_threads_option
def predict(source, images, checkpoint, top_k, batch_size, device, threads):
    """Classify IMAGES with SOURCE (a model, hf-hub:, local-dir: or an .onnx file): top-k with label names.
    EXIF rotation tags are ignored, as timm's loader does (a note says so per image)."""
    from .evaluate import predict as run_predictions

    classifier = _load(source, checkpoint, device, threads=threads)
    click.echo(f"{classifier.architecture} on {classifier.backend}")
    rotated = 0
    for prediction in run_predictions(classifier, images, batch_size, top_k):
        click.echo(prediction.path)
        if prediction.rotation_note:
            rotated += 1
            click.echo(f"  {prediction.rotation_note}")
        for label, prob in prediction.ranked:
            click.echo(f"  {prob:7.2%}  {label}")
    if rotated:
        click.echo(f"note: {rotated} of {len(images)} images carry an EXIF rotation that was ignored, so that the "
                   "predictions are the ones timm's loader, validate.py and `timm-dog eval` give (docs/predict.md)",
                   err=True)


@main.command("eval")
@click.argument("source")
@click.option("--data-dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="An ImageFolder (class sub-folders), or the root of a timm --dataset.")
@click.option("--dataset", default="", help="A timm dataset name (e.g. torch/cifar10); default: ImageFolder.")
@click.option("--split", default="validation", show_default=True)
@click.option("--download", is_flag=True, help="Let a torch/… or tfds/… --dataset download itself into --data-dir.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Weights for a model-name SOURCE.")
@click.option("--compare", default=None, metavar="OTHER_SOURCE",
              help="Evaluate OTHER_SOURCE on the same images and test the difference (McNemar, exact).")
@click.option("--compare-checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Weights for a model-name OTHER_SOURCE.")
@click.option("--ema", is_flag=True, help="Evaluate the --checkpoint's EMA weights (train.py's state_dict_ema).")
@click.option("--compare-ema", is_flag=True, help="Evaluate the --compare-checkpoint's EMA weights.")
@click.option("--batch-size", "-b", type=click.IntRange(1), default=32, show_default=True)
@click.option("--workers", "-j", type=click.IntRange(0), default=None,
              help="Loader processes that read and preprocess images (default: this machine's CPU cores).")
@_device_option
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), default=None,
              help="Autocast a torch SOURCE to this precision (default: off, fp32); OTHER_SOURCE too, unless "
                   "--compare-amp says otherwise.")
@click.option("--compare-amp", type=click.Choice(["bf16", "fp16", "fp32"]), default=None,
              help="OTHER_SOURCE's own precision (fp32: no autocast), e.g. to test fp32 against AMP "
                   "[default: --amp's].")
@_threads_option
@click.option("--json", "json_out", type=OutputPath(JSON), default=None)
def eval_command(source, data_dir, dataset, split, download, checkpoint, compare, compare_checkpoint, ema,
                 compare_ema, batch_size, workers, device, amp, compare_amp, threads, json_out):
    """Top-1, top-5, loss and images/s of SOURCE on a folder of labelled images."""
    import json

    from .evaluate import class_mapping, evaluate, mcnemar, open_dataset

    for option, value in (("--compare-checkpoint", compare_checkpoint), ("--compare-amp", compare_amp)):
        if value and not compare:
            raise click.UsageError(f"{option} needs --compare")
    if compare_ema and not compare_checkpoint:
        raise click.UsageError("--compare-ema needs --compare-checkpoint")
    sources = [(source, checkpoint, ema, amp)]
    if compare:
        sources.append((compare, compare_checkpoint, compare_ema, amp if compare_amp is None else
                        None if compare_amp == "fp32" else compare_amp))
        if amp and compare_amp is None:
            click.echo(f"note: both sources run under {amp} autocast (--amp); --compare-amp fp32 evaluates "
                       f"{compare} in fp32", err=True)
    try:
        data, info = open_dataset(data_dir, dataset, split, download)
        classifiers = [_load(src, ckpt, device, precision, option, threads, use_ema)
                       for (src, ckpt, use_ema, precision), option in zip(sources, ("--checkpoint",
                                                                                    "--compare-checkpoint"))]
        indices, rule = class_mapping(data, *(c.labels for c in classifiers))
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    _check_not_training_images(info, classifiers, split)
    click.echo(f"data: {info.get('split_rule') or info['data_dir']}; classes {rule}")
    names = _side_names(sources) if compare else [source]
    results = []
    for classifier, index, name in zip(classifiers, indices, names):
        try:
            results.append(evaluate(classifier, data, batch_size, workers, dataset_info=info, class_index=index,
                                    rule=rule, name=name))
        except ValueError as error:
            raise click.ClickException(_named(classifier.source, error)) from None
    width = max(len("backend"), *(len(r.backend) for r in results))
    click.echo(f"{'source':<36} {'backend':<{width}} {'images':>6} {'top-1':>7} {'top-5':>7} {'loss':>7} {'img/s':>8}")
    for r in results:
        source_name = r.source if len(r.source) <= 36 else "…" + r.source[-35:]
        click.echo(f"{source_name:<36} {r.backend:<{width}} {r.num_images:>6} {r.top1:>7.2f} {r.top5:>7.2f} "
                   f"{r.loss:>7.4f} {r.images_per_second:>8.1f}")
    for r in results:  # what each number was measured on
        measured = r.weights.get("source") if r.weights else r.source
        if r.weights:
            measured = f"{measured}, {'EMA weights (state_dict_ema)' if r.weights['ema'] else 'weights (state_dict)'}"
            measured += f", epoch {r.weights['epoch']}" if r.weights.get("epoch") is not None else ""
        size = "x".join(map(str, r.input_size or []))
        training = r.weights and r.weights.get("source") in r.dataset.get("training_images_of", [])
        click.echo(f"measured on: {measured}; images at {size}" + ("; its TRAINING images (--split "
                                                                   f"{split}): training accuracy" if training else ""))
    report = results[0].to_dict()
    if compare:
        differ = _settings_differences(checkpoint, compare_checkpoint)
        test = mcnemar(results[0].correct, results[1].correct)
        difference = results[0].top1 - results[1].top1
        click.echo(f"top-1 difference {difference:+.2f} points; McNemar exact p = {test['p_value']:.4g} "
                   f"({test['only_a_correct']} images right only for {names[0]}, "
                   f"{test['only_b_correct']} only for {names[1]})")
        if differ[0] is not None:  # two train.py runs: not a question about their inits
            click.echo("note: McNemar's test is about these two networks on these images; whether an init trains "
                       "better models takes several training runs per init (timm-dog report compares them run by run)")
        report = {"a": report, "b": results[1].to_dict(), "top1_difference": difference, "mcnemar": test,
                  "settings_differences": differ[0], "seeds": differ[1]}
    if json_out:
        write_text(json_out, json.dumps(report, indent=2))
        click.echo(f"wrote {json_out}")


def _side_names(sources: list) -> list:
    """The names of eval's two sides: their SOURCEs, and where those are the same, what sets the sides apart (the
    checkpoint, EMA or model weights, precision). ``sources``: [(source, checkpoint, EMA, precision)] * 2."""
    (a, *given_a), (b, *given_b) = sources
    if a != b:
        return [a, b]
    shows = (str, lambda ema: "EMA weights" if ema else "model weights", lambda amp: amp or "fp32")
    parts = [[show(x), show(y)] for x, y, show in zip(given_a, given_b, shows) if x != y]
    return [f"{a} ({', '.join(p[i] for p in parts)})" if parts else a for i in (0, 1)]


def _plan_line(plan: dict, std_from: str) -> str:
    cost = plan["cost"]
    line = (f"     plan: detecting Δ = {plan['delta']:+g} points at 80 % power (α 0.05, two-sided) with a run std of "
            f"{plan['run_std']:.3g} points ({std_from}) takes {plan['runs_per_arm']} runs per arm")
    if cost is None:
        return line + "; GPU-hours unknown: the recipe's header states no measured cost (recipe check --benchmark)\n"
    gpus = "one GPU" if cost["gpus"] == 1 else f"{cost['gpus']} GPUs"
    return line + (f", {2 * plan['runs_per_arm']} runs with the baseline: {plan['gpu_hours']:,.0f} GPU-hours "
                   f"({cost['hours']:g} h on {gpus} per run, from the recipe's Cost line)\n")


def _run_std(value: str) -> tuple:
    """--run-std: (points, where from) from a number of points or an earlier report.json."""
    from .report import ReportError, run_std_of

    try:
        std = float(value)
    except ValueError:
        try:
            return run_std_of(value)
        except ReportError as error:
            raise click.BadParameter(str(error), param_hint="--run-std") from None
    if not std >= 0 or std == float("inf"):
        raise click.BadParameter(f"{value}: a run std is a finite number of points >= 0 (or a report.json)",
                                 param_hint="--run-std")
    return std, "given"


def _settings_differences(checkpoint, other):
    """(train.py settings (report's rule: not the seed, the arm, bookkeeping or settings without effect) in which the
    runs of two checkpoints differ, their seeds), each said as a note; (None, None) when either has no train.py
    args."""
    from .trainpy.runs import args_settings, checkpoint_args

    args = [checkpoint_args(c) if c else None for c in (checkpoint, other)]
    if None in args:
        if checkpoint and other:
            lacking = " and ".join(str(c) for c, a in zip((checkpoint, other), args) if a is None)
            click.echo(f"note: the train.py settings of the two runs cannot be compared: {lacking} carries no "
                       "train.py args (none inside, no args.yaml beside it); the difference below may not be the "
                       "init's alone", err=True)
        return None, None
    seeds = [x.get("seed") for x in args]
    if seeds[0] != seeds[1]:
        click.echo(f"note: {checkpoint} and {other} were trained with different seeds ({seeds[0]} vs {seeds[1]}): "
                   "other data order, augmentation and drop-path, so the difference below includes the variation "
                   "between runs, not the init's alone (timm-dog report pairs runs by equal seed)", err=True)
    a, b = (args_settings(x) for x in args)
    differ = sorted(k for k in {**a, **b} if a.get(k, "(absent)") != b.get(k, "(absent)"))
    if differ:
        click.echo(f"note: {checkpoint} and {other} were trained with different settings: "
                   + ", ".join(f"{k} ({a.get(k, '(absent)')} vs {b.get(k, '(absent)')})" for k in differ)
                   + ": the difference below is not the init's alone (timm-dog report pairs runs only when these "
                     "agree)", err=True)
    return differ, seeds


def _check_not_training_images(info: dict, classifiers: list, split: str) -> None:
    """Refuse an ImageFolder that holds a source's training images (train.py's train split of its run), unless
    --split names a training split: then say that the numbers are training accuracy, in the output and the JSON."""
    from .constants import SPLIT_ALIASES
    from .trainpy.data import training_images, training_images_message

    for classifier in classifiers:
        trained_on = (classifier.weights or {}).get("trained_on") or {}
        if not info.get("folder") or not training_images(info["folder"], trained_on):
            continue
        message = training_images_message(info["folder"], trained_on, classifier.weights["source"])
        if split not in (*SPLIT_ALIASES[0], trained_on["train_split"]):
            raise click.ClickException(f"{message} (or --split {trained_on['train_split']} to measure training "
                                       f"accuracy on purpose)")
        click.echo(f"note: --split {split}: {info['folder']} holds the training images of "
                   f"{classifier.weights['source']}: the numbers are training accuracy", err=True)
        info.setdefault("training_images_of", []).append(classifier.weights["source"])


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_name", required=True, help="The *_dog model the checkpoint was trained as.")
@click.option("--repo", "repo_id", required=True, help="ORG/NAME on the Hugging Face Hub.")
@click.option("--eval-json", type=click.Path(exists=True, dir_okay=False), default=None,
              help="`timm-dog eval … --json` measured on this checkpoint.")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="train.py's args.yaml (default: the checkpoint's own args, or args.yaml beside it).")
@click.option("--ema", is_flag=True, help="Publish the checkpoint's EMA weights (state_dict_ema).")
@click.option("--fp16", is_flag=True, help="Also publish onnx/model_fp16.onnx.")
@click.option("--int8", "int8_dir", type=click.Path(exists=True, file_okay=False), default=None, metavar="DIR",
              help="Also publish onnx/model_int8.onnx, calibrated on the images in DIR.")
@click.option("--verify-images", type=click.Path(exists=True, file_okay=False), default=None, metavar="DIR",
              help="Images for the ONNX check (default: scikit-learn's two photos).")
@click.option("--license", "license_", default="apache-2.0", show_default=True)
@click.option("--dataset", "datasets", multiple=True,
              help="Hub dataset id(s) for the card (e.g. imagenet-1k), needed when --eval-json was measured on an "
                   "ImageFolder; repeat for more.")
@click.option("--stage-dir", type=OutputPath(folder=True), default=None,
              help="Stage here (and keep it); default: a temporary folder.")
@click.option("--dry-run", is_flag=True, help="Stage and show what would be uploaded; upload nothing.")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--revision", default=None, help="Branch to commit to (created if missing).")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing to the branch.")
@click.option("--force", is_flag=True, help="Publish even without an eval JSON or with a failing ONNX check.")
@click.option("--report", "report_json", type=click.Path(exists=True, dir_okay=False), default=None,
              help="`timm-dog report`'s report.json with this checkpoint: adds a 'DoG vs native init' card section.")
def push(checkpoint, model_name, repo_id, eval_json, recipe, ema, fp16, int8_dir, verify_images, license_, datasets,
         stage_dir, dry_run, private, revision, create_pr, force, report_json):
    """Stage CHECKPOINT as a Hub repository (safetensors, config, ONNX, eval, card) and upload it in one commit."""
    import shutil
    import tempfile

    from huggingface_hub import get_token

    from . import hub
    from .trainpy.args import read_train_args

    if not dry_run and not get_token():  # before the minutes of staging
        raise click.ClickException(hub.NO_TOKEN)
    temporary = stage_dir is None
    folder = Path(tempfile.mkdtemp(prefix="timm-dog-push-")) / "repo" if temporary else stage_dir
    try:
        record = read_train_args(recipe) if recipe else None  # a ValueError naming the file: one line, exit 1
        staged = hub.stage(checkpoint, model_name, folder, repo_id=repo_id, eval_json=eval_json, recipe=record,
                           use_ema=ema, fp16=fp16, int8_calibration=int8_dir, verify_images=verify_images,
                           license=license_, datasets=datasets, force=force, report=report_json,
                           log=click.echo)
        click.echo(f"staged {staged.architecture} for {repo_id} in {staged.folder}:\n{staged.listing()}")
        if dry_run:
            click.echo("dry run: nothing uploaded")
            return
        url = hub.push(staged, repo_id, private=private, revision=revision, create_pr=create_pr)
        click.echo(f"pushed {len(staged.files)} files in one commit: {url}")
    finally:
        if temporary:
            shutil.rmtree(folder.parent, ignore_errors=True)


@main.command("report")
@click.argument("run_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The validation ImageFolder every checkpoint is evaluated on.")
@click.option("--ema", is_flag=True, help="Evaluate the checkpoints' EMA weights (state_dict_ema).")
@click.option("--unfused", is_flag=True,
              help="Kernel survival of re-parameterizable models on their training branches (default: fused).")
@click.option("--out", "-o", type=OutputPath(folder=True), default=Path("report"), show_default=True)
@click.option("--batch-size", "-b", type=click.IntRange(1), default=64, show_default=True)
@click.option("--workers", "-j", type=click.IntRange(0), default=None,
              help="Loader processes that read and preprocess images (default: this machine's CPU cores).")
@_device_option
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), default=None,
              help="Autocast the models to this precision (default: off, fp32).")
@click.option("--run-std", type=click.FloatRange(0, min_open=True), default=None, metavar="POINTS",
              help="Std of one run's top-1 (points) for planning the runs an arm with one run needs [default: 1.0, "
                   "a conservative guess].")
def report_command(run_dirs, data_dir, ema, unfused, out, batch_size, workers, device, amp, run_std):
    """Does the DoG init train better models than the native init? Compares *_dog runs of train.py (every arm: DoG,
    frozen, control patterns) with their native-init runs (RUN_DIRS), one row per base model and settings, over
    training runs (paired by seed when every arm has the same seeds) and validation images: Table 1 rows, run-level
    tests, curves, kernels."""
    from .report import build_report, group_runs, read_run, write_report

    try:
        rows, unpaired = group_runs([read_run(folder) for folder in run_dirs])
        for run in unpaired:
            click.echo(f"left out: {run['folder']}: {run['why']}", err=True)
        report = build_report(rows, unpaired, data_dir, ema, batch_size, workers, device=device, amp=amp,
                              fused=not unfused, run_std=run_std)
        paths = write_report(report, rows, out)
    except ValueError as error:  # ReportError, and an unreadable --data-dir
        raise click.ClickException(str(error)) from None
    click.echo((out / "report.md").read_text())
    click.echo("wrote " + ", ".join(str(p) for p in paths))
