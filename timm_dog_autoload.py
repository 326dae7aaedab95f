"""Makes every process that imports timm see the ``*_dog`` models, without importing timm_dog.

Run at interpreter start by ``timm_dog.pth``. It only puts a small finder on ``sys.meta_path``
(no import of torch or timm); when timm itself is imported, the finder lets timm load normally
and then imports ``timm_dog.models``, which registers the models. ``TIMM_DOG_AUTOLOAD=0`` turns
it off.
"""

import os
import sys

DISABLED = os.environ.get("TIMM_DOG_AUTOLOAD", "1").strip().lower() in ("0", "false", "no", "off")


class _RegisterAfterLoad:
    """Loader wrapper: runs timm's own loader, then registers the models."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        try:
            import timm_dog.models  # noqa: F401
        except Exception as error:  # never break `import timm`
            import warnings

            warnings.warn(f"timm-dog: the *_dog models could not be registered: {error!r}", stacklevel=2)


class TimmFinder:
    """One-shot meta-path finder that wraps timm's loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "timm":
            return None
        uninstall()
        from importlib.util import find_spec

        spec = find_spec("timm")
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterLoad(spec.loader)
        return spec


_FINDER = TimmFinder()


def install(force: bool = False):
    """Register the models when timm is imported; ``force``: even with TIMM_DOG_AUTOLOAD off (``import timm_dog``)."""
    if (force or not DISABLED) and "timm" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall():
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


install()
