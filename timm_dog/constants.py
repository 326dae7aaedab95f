"""Values that the command line shows before it imports torch (its --help stays fast); the library reads them here."""

SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # what torch.Generator.manual_seed accepts (negative seeds wrap)
OPSET = 20  # native Gelu: onnxruntime fuses it (at 18, the dynamo graph keeps Erf/Div/Mul unfused)
EXPORTER = "dynamo"  # the default route: see docs/measurements.md's route table (benchmarks/bench_onnx.py routes)
CALIBRATION_IMAGES = 256  # int8 calibration images by default (MinMax: a few hundred are as good as thousands)
SPLIT_ALIASES = (("train", "training"), ("validation", "val", "valid", "eval", "evaluation"))  # timm's synonyms
SPLIT_NAMES = {name for names in SPLIT_ALIASES for name in names} | {"test", "testing"}
