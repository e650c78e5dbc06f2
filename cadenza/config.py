"""The recipe's configuration: OmegaConf resolvers used by ``config.yaml``, validation and composition.

Importing this module registers the resolvers, so every entry point imports it before hydra reads the config.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from xumx_slicq_v2._optional import exit_if_missing, require
from xumx_slicq_v2.locking import exclusive_lock
from xumx_slicq_v2.signals import sigterm_exits

log = logging.getLogger(__name__)

#: Folder of ``config.yaml`` (hydra ``config_path`` of every entry point).
CONFIG_DIR = Path(__file__).resolve().parent

#: Ready-made hydra launcher configurations (``recipes/cadenza/hydra/launcher``) of a source checkout.
RECIPES_DIR = CONFIG_DIR.parent / "recipes" / "cadenza"

#: Hydra decorator arguments shared by the entry points.
HYDRA_MAIN = {"config_path": ".", "config_name": "config", "version_base": None}

#: How pyclarity is installed: without its declared dependencies, which pull torchaudio (see README).
PYCLARITY_INSTALL = "pip install --no-deps pyclarity==0.9.0"


def require_pyclarity() -> None:
    """Raise `MissingDependency` (one line saying how to install it) where pyclarity cannot be imported."""
    require("clarity", extra="cadenza", purpose="the Cadenza recipe", remedy=PYCLARITY_INSTALL)


@contextlib.contextmanager
def recipe_command() -> Iterator[None]:
    """The body of every recipe command: SIGTERM removes the temporaries (a rerun resumes), and a missing
    dependency (pyclarity, checked first, or an extra) is one line on stderr and exit status 2."""
    with sigterm_exits(), exit_if_missing():
        require_pyclarity()
        yield


class ConfigError(ValueError):
    """A configuration value is unusable (the message names the key)."""


def _demo_module():
    try:
        return importlib.import_module("data_prep.demo")
    except ImportError as err:
        raise ConfigError(
            f"path.root: the demo dataset generator (data_prep.demo) cannot be imported ({err}); "
            "pass path.root=<CAD1 data>/cad1/task1"
        ) from err


def demo_data_root() -> str:
    """``path.root`` default: the CAD1 task-1 folder of the demo dataset (not generated here, see
    :func:`prepare_data`)."""
    return str((Path(_demo_module().DEFAULT_DEMO_ROOT) / "cad1" / "task1").resolve())


def prepare_data(cfg: DictConfig, metadata: bool = True) -> None:
    """Generate the demo dataset if the run reads from it and it does not exist yet (once, under a lock).

    ``metadata``: whether the run reads the song and listener files (not ``demix.songs=all``).
    """
    demo_root = Path(demo_data_root())
    used = (cfg.path.music_dir, cfg.path.music_file, cfg.path.listeners_file) if metadata else (cfg.path.music_dir,)
    if not any(Path(path).resolve().is_relative_to(demo_root) for path in used):
        return
    demo = _demo_module()
    lock_file = Path(demo.DEFAULT_DEMO_ROOT).parent / f".{Path(demo.DEFAULT_DEMO_ROOT).name}.lock"
    with exclusive_lock(lock_file):  # parallel jobs of a multirun must not generate it twice
        root = Path(demo.ensure_demo_dataset(demo.DEFAULT_DEMO_ROOT)).resolve()
    if root != demo_root:
        raise ConfigError(f"path.root: the demo dataset is at {root}, expected {demo_root}")
    log.info("path.root: the synthetic demo dataset at %s", root)


def run_name(model: str, weights: str | None) -> str:
    """Name of a run's exp folder: ``<model>_<weights name>`` (``oracle`` for the oracle separator)."""
    if model == "oracle" or weights in (None, ""):
        return str(model)
    return f"{model}_{Path(str(weights)).name or 'weights'}"


def recipes_dir() -> str:
    """The launcher-config folder: the checkout's ``recipes/cadenza``, else ``./recipes/cadenza``; an installed
    package run outside a checkout has neither, and gets its own folder (hydra then offers its own launchers only,
    and warns about no missing search path)."""
    for folder in (RECIPES_DIR, Path("recipes/cadenza").resolve()):
        if folder.is_dir():
            return str(folder)
    return str(CONFIG_DIR)


def _register_resolvers() -> None:
    resolvers = {
        "cadenza.demo_root": demo_data_root,
        "cadenza.run_name": run_name,
        "cadenza.abspath": lambda path: os.path.abspath(path),
        "cadenza.recipes_dir": recipes_dir,
    }
    for name, function in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


_register_resolvers()


def compose_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """The recipe config with hydra-style ``overrides``, as the command line would build it (for the Python API)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name=config_name, overrides=list(overrides))


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming the key when a setting cannot work."""
    if int(cfg.nalr.sample_rate) != int(cfg.sample_rate):
        raise ConfigError(
            f"nalr.sample_rate={cfg.nalr.sample_rate} must equal sample_rate={cfg.sample_rate} "
            "(NAL-R filters the stems at the input rate)"
        )
    batch, batch_size = int(cfg.evaluate.batch), int(cfg.evaluate.batch_size)
    if batch_size < 1 or not 0 <= batch < batch_size:
        raise ConfigError(f"evaluate.batch={batch} must be in [0, evaluate.batch_size={batch_size})")
    for key in ("sample_rate", "stem_sample_rate", "remix_sample_rate"):
        if int(cfg[key]) <= 0:
            raise ConfigError(f"{key}={cfg[key]} must be a positive rate in Hz")
    if cfg.demix.songs not in ("metadata", "all"):
        raise ConfigError(f"demix.songs={cfg.demix.songs!r} must be 'metadata' or 'all'")
