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

import http.client
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
from xumx_slicq_v2.provenance import file_sha256

#: File names inside a model directory.
WEIGHTS_NAME = "xumx_slicq_v2.pth"
METADATA_NAME = "xumx_slicq_v2.json"

#: Base URLs of the published models (the reference's branch ``v2``); the two files are below each.
PRETRAINED_URLS = {
    "offline": "https://github.com/sevagh/xumx-sliCQ/raw/v2/pretrained_model",
    "realtime": "https://github.com/sevagh/xumx-sliCQ/raw/v2/pretrained_model_realtime",
}

#: Size in bytes and SHA-256 of the published weights (``xumx_slicq_v2.pth``), checked after download and when
#: found in place.
PUBLISHED_WEIGHTS = {
    "offline": (62_466_945, "48c86f90083c8417c47e236b12a848518c3e29d46b1a34d7e275d27b1e3203f8"),
    "realtime": (62_467_137, "12e25e8b7289117a1edc95fa898d40c074a56bfa9057f0b36b2d4c7c3bafe5c1"),
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
        verify_published_weights(name_or_dir, directory / WEIGHTS_NAME)  # also files placed there by hand
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


def weights_sha256(name_or_dir: str | os.PathLike) -> str:
    """SHA-256 of a model's weights: the published checksum for ``offline``/``realtime`` (the files are checked
    against it when loaded), else that of the directory's ``xumx_slicq_v2.pth`` (not downloading anything)."""
    if isinstance(name_or_dir, str) and name_or_dir in PUBLISHED_WEIGHTS:
        return PUBLISHED_WEIGHTS[name_or_dir][1]
    return file_sha256(resolve_model_dir(name_or_dir, download=False) / WEIGHTS_NAME)


def download_pretrained(name: str, directory: str | os.PathLike) -> Path:
    """Download the published model ``name`` (its ``.pth`` and ``.json``) into ``directory``.

    A file appears under its final name only once complete (the weights also verified by size and SHA-256). An
    interrupted download stays in a hidden ``.<name>.download`` file and resumes there (HTTP Range) on the next
    call; one that fails verification is deleted, so the next call starts again. Without network access the
    error says where to place the files by hand.
    """
    directory = Path(directory)
    base = PRETRAINED_URLS[name]
    for file_name in (METADATA_NAME, WEIGHTS_NAME):
        destination = directory / file_name
        if destination.is_file():
            continue
        url = f"{base}/{file_name}"
        expected_size = PUBLISHED_WEIGHTS[name][0] if file_name == WEIGHTS_NAME else None
        try:
            partial = _download(url, destination, expected_size)
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as err:
            raise CheckpointError(
                f"could not download the {name!r} model ({url}: {err}); run again to resume. Without network "
                f"access, download {base}/{WEIGHTS_NAME} and {base}/{METADATA_NAME} elsewhere and place them by "
                f"hand at {directory / WEIGHTS_NAME} and {directory / METADATA_NAME}"
            ) from err
        if file_name == WEIGHTS_NAME:
            try:
                verify_published_weights(name, partial, url)
            except CheckpointError:
                partial.unlink()
                raise
        os.replace(partial, destination)
    return directory


def _download(url: str, destination: Path, expected_size: int | None = None) -> Path:
    """Stream ``url`` into the hidden partial file of ``destination`` (resuming what is there with an HTTP Range
    request; restarting if the server ignores it), with a progress bar; returns the partial file."""
    partial = destination.with_name(f".{destination.name}.download")
    partial.parent.mkdir(parents=True, exist_ok=True)
    offset = partial.stat().st_size if partial.is_file() else 0
    if expected_size is not None and offset >= expected_size:
        return partial  # complete (or too long): verification decides
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not offset:
            raise
        partial.unlink()  # the server cannot continue this partial file: start again
        return _download(url, destination, expected_size)
    with response:
        resumed = offset > 0 and response.status == 206
        length = int(response.headers.get("Content-Length") or 0)
        start = offset if resumed else 0
        with (
            open(partial, "ab" if resumed else "wb") as file,
            tqdm(
                total=start + length or None,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=destination.name,
            ) as progress,
        ):
            received = 0
            while chunk := response.read(1 << 20):
                file.write(chunk)
                received += len(chunk)
                progress.update(len(chunk))
    if length and received < length:  # the connection closed early: keep what came, for the next call
        raise http.client.IncompleteRead(b"", length - received)
    return partial


#: How every Git LFS pointer file starts (what GitHub serves for an LFS object where LFS is not resolved).
LFS_POINTER_PREFIX = b"version https://git-lfs"


def verify_published_weights(name: str, path: Path, url: str | None = None) -> None:
    """Check that ``path`` holds the published ``name`` weights (size, then SHA-256; see `PUBLISHED_WEIGHTS`).

    ``url``: where ``path`` was just downloaded from (then a temporary file, named by the URL in the message).
    A Git LFS pointer, a truncated file and any other file are each a `CheckpointError` saying what was expected
    and how to get the right file.
    """
    expected_size, expected_sha256 = PUBLISHED_WEIGHTS[name]
    expected = f"the published {name!r} weights ({expected_size:,} bytes, sha256 {expected_sha256})"
    destination = pretrained_dir(name) / WEIGHTS_NAME
    by_hand = (
        f"download {PRETRAINED_URLS[name]}/{WEIGHTS_NAME} through the GitHub web page (or `git lfs pull` in a "
        f"clone of the reference) and place it at {destination}"
    )
    what, retry = (f"{path}", "delete it and run again to download it") if url is None else (url, "run again")
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(len(LFS_POINTER_PREFIX))
    if head == LFS_POINTER_PREFIX:
        raise CheckpointError(
            f"{what}: a Git LFS pointer ({size} bytes of text), not {expected}: the server did not resolve LFS; "
            f"{by_hand}"
        )
    if size < expected_size:
        raise CheckpointError(f"{what}: {size:,} bytes, a truncated copy of {expected}; {retry}, or {by_hand}")
    actual = file_sha256(path) if size == expected_size else None
    if actual != expected_sha256:
        found = f"{size:,} bytes" + (f", sha256 {actual}" if actual else "")
        raise CheckpointError(
            f"{what}: {found}, not {expected}; {retry}, or {by_hand} (to use other weights, pass their model "
            "directory instead of the name)"
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
