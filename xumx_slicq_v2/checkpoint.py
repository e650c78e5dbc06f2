"""Reference-format checkpoints and the named models.

A model directory holds ``xumx_slicq_v2.pth``, a bare ``state_dict`` with exactly the reference's keys and
shapes, and ``xumx_slicq_v2.json``, the training metadata whose ``args`` give the transform and network
configuration (`ModelConfig.from_reference_args`). Directories written by the reference load here and the
other way round.

Named models: ``offline`` and ``realtime`` are the published weights of the reference, downloaded once into
``<torch hub dir>/checkpoints/xumx_slicq_v2_<name>/``; ``demo`` is the small model shipped as package data in
``xumx_slicq_v2/pretrained/demo/`` (trained on synthetic music by ``recipes/training/demo.sh``).
"""

from __future__ import annotations

import importlib.resources
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from xumx_slicq_v2.audio import atomic_path, write_text_atomic
from xumx_slicq_v2.model import ModelConfig, Unmix, build_unmix

#: File names inside a model directory.
WEIGHTS_NAME = "xumx_slicq_v2.pth"
METADATA_NAME = "xumx_slicq_v2.json"

#: Base URLs of the published models (the reference's branch ``v2``); the two files are below each.
PRETRAINED_URLS = {
    "offline": "https://github.com/sevagh/xumx-sliCQ/raw/v2/pretrained_model",
    "realtime": "https://github.com/sevagh/xumx-sliCQ/raw/v2/pretrained_model_realtime",
}

#: The demo model, package data of ``xumx_slicq_v2`` (written by ``recipes/training/demo.sh``).
DEMO_DIR = Path(str(importlib.resources.files("xumx_slicq_v2") / "pretrained" / "demo"))

#: Seconds before a stalled download is abandoned.
DOWNLOAD_TIMEOUT = 60.0


class CheckpointError(RuntimeError):
    """A model directory, its files or their contents are unusable (the message names the file and key)."""


def pretrained_dir(name: str) -> Path:
    """Where the published model ``name`` lives once downloaded: ``<torch hub dir>/checkpoints/...``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / f"xumx_slicq_v2_{name}"


def resolve_model_dir(name_or_dir: str | os.PathLike, download: bool = True) -> Path:
    """The model directory for ``offline``, ``realtime``, ``demo`` or a path (a directory, or one of its two
    files); the published models are downloaded first if missing and ``download`` is set."""
    if isinstance(name_or_dir, str) and name_or_dir in PRETRAINED_URLS:
        directory = pretrained_dir(name_or_dir)
        if not _has_model_files(directory):
            if not download:
                raise CheckpointError(f"the {name_or_dir!r} model is not in {directory} (downloading is disabled)")
            download_pretrained(name_or_dir, directory)
        return directory
    if isinstance(name_or_dir, str) and name_or_dir == "demo":
        if not _has_model_files(DEMO_DIR):
            raise CheckpointError(
                f"the demo model is not in {DEMO_DIR}: the demo weights are produced by the training recipe "
                "(recipes/training/demo.sh, INSTALL=1); train them first or pass another model directory"
            )
        return DEMO_DIR
    path = Path(name_or_dir)
    if path.is_file() and path.name in (WEIGHTS_NAME, METADATA_NAME):
        path = path.parent
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such model directory (and not one of the names offline, realtime, demo)")
    missing = [name for name in (WEIGHTS_NAME, METADATA_NAME) if not (path / name).is_file()]
    if missing:
        raise CheckpointError(f"{path}: model directory lacks {' and '.join(missing)}")
    return path


def download_pretrained(name: str, directory: str | os.PathLike) -> Path:
    """Download the published model ``name`` (its ``.pth`` and ``.json``) into ``directory``.

    Each file is written atomically. Without network access the error says where to place the files by hand.
    """
    directory = Path(directory)
    base = PRETRAINED_URLS[name]
    for file_name in (METADATA_NAME, WEIGHTS_NAME):
        destination = directory / file_name
        if destination.is_file():
            continue
        url = f"{base}/{file_name}"
        try:
            _download(url, destination)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise CheckpointError(
                f"could not download the {name!r} model ({url}: {err}). Without network access, download "
                f"{base}/{WEIGHTS_NAME} and {base}/{METADATA_NAME} elsewhere and place them by hand at "
                f"{directory / WEIGHTS_NAME} and {directory / METADATA_NAME}"
            ) from err
    _check_not_lfs_pointer(directory / WEIGHTS_NAME)
    return directory


def _download(url: str, destination: Path) -> None:
    """Stream ``url`` into ``destination`` atomically, with a progress bar."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, atomic_path(destination) as part:
        total = int(response.headers.get("Content-Length") or 0) or None
        with (
            open(part, "wb") as file,
            tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=destination.name) as progress,
        ):
            while chunk := response.read(1 << 20):
                file.write(chunk)
                progress.update(len(chunk))


def _check_not_lfs_pointer(path: Path) -> None:
    """The published ``.pth`` files are Git-LFS objects: a pointer file instead of the weights is an error."""
    with open(path, "rb") as file:
        head = file.read(64)
    if head.startswith(b"version https://git-lfs"):
        path.unlink()
        raise CheckpointError(
            f"{path}: the server sent a Git-LFS pointer instead of the weights; download the file through the "
            "GitHub web page (or `git lfs pull`) and place it there by hand"
        )


def _has_model_files(directory: Path) -> bool:
    return all((directory / name).is_file() for name in (WEIGHTS_NAME, METADATA_NAME))


def read_metadata(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a model directory (must hold an ``args`` object)."""
    path = Path(model_dir) / METADATA_NAME
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read the model metadata ({err})") from err
    if not isinstance(metadata, dict) or not isinstance(metadata.get("args"), dict):
        raise CheckpointError(f"{path}: expected a JSON object with an 'args' object")
    return metadata


def read_config(model_dir: str | os.PathLike) -> ModelConfig:
    """The `ModelConfig` recorded in a model directory's JSON ``args``."""
    try:
        return ModelConfig.from_reference_args(read_metadata(model_dir)["args"])
    except ValueError as err:
        raise CheckpointError(f"{Path(model_dir) / METADATA_NAME}: {err}") from err


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A bare state_dict from a ``.pth`` file (loaded on CPU, tensors only)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for missing, truncated or foreign files
        raise CheckpointError(f"{path}: cannot load the weights ({err})") from err
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise CheckpointError(f"{path}: expected a bare state_dict (a mapping of names to tensors)")
    return dict(state)


def load_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Strictly load ``state`` into ``model``: any missing, unexpected or mis-shaped key is an error that
    names the key (and ``source``, the file it came from)."""
    expected = model.state_dict()
    problems = [
        f"missing key {key!r} (shape {tuple(value.shape)})" for key, value in expected.items() if key not in state
    ]
    problems += [f"unexpected key {key!r}" for key in state if key not in expected]
    problems += [
        f"key {key!r} has shape {tuple(value.shape)}, the model expects {tuple(expected[key].shape)}"
        for key, value in state.items()
        if key in expected and value.shape != expected[key].shape
    ]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... ({len(problems) - 10} more)" if len(problems) > 10 else "")
        raise CheckpointError(f"{source}: state_dict does not fit the model: {shown}")
    model.load_state_dict(state, strict=True)


def load_model(
    name_or_dir: str | os.PathLike,
    realtime: bool | None = None,
    device: str | torch.device = "cpu",
    block_shapes: Sequence[tuple[int, int]] | None = None,
) -> tuple[Unmix, ModelConfig, Path]:
    """Load a named model or a model directory.

    Args:
        name_or_dir: ``offline``, ``realtime``, ``demo`` or a model directory.
        realtime: ``None`` accepts the checkpoint's mode; ``True``/``False`` must agree with it (weights
            trained for one mode are wrong in the other).
        device: where the model goes.
        block_shapes: ``(freq_bins, coefs)`` per block; by default taken from the config's sliCQT.

    Returns:
        ``(model, config, model_dir)`` with the model in eval mode and its parameters frozen.
    """
    model_dir = resolve_model_dir(name_or_dir)
    config = read_config(model_dir)
    if realtime is not None and bool(realtime) != config.realtime:
        wanted, found = ("realtime", "offline") if realtime else ("offline", "realtime")
        raise CheckpointError(
            f"{model_dir / METADATA_NAME}: asked for a {wanted} model, but these weights are {found} "
            f"(args.realtime = {str(config.realtime).lower()})"
        )
    model = build_unmix(config) if block_shapes is None else Unmix(config, block_shapes)
    weights = model_dir / WEIGHTS_NAME
    load_weights(model, read_state_dict(weights), weights)
    model.requires_grad_(False)
    return model.eval().to(device), config, model_dir


def save_model(model_dir: str | os.PathLike, model: Unmix, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as a reference-format directory (both files atomically).

    ``metadata`` (training history etc.) goes into the JSON; its ``args`` are completed with, and overridden
    by, the model's `ModelConfig.to_reference_args`.
    """
    model_dir = Path(model_dir)
    content = dict(metadata or {})
    content["args"] = {**content.get("args", {}), **model.config.to_reference_args()}
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    with atomic_path(model_dir / WEIGHTS_NAME) as part:
        torch.save(state, part)
    write_text_atomic(model_dir / METADATA_NAME, json.dumps(content, indent=4, sort_keys=True) + "\n")
    return model_dir
