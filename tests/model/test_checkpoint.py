"""Reference-format model directories: round trip, strict loading, metadata errors, named models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from xumx_slicq_v2 import checkpoint
from xumx_slicq_v2.checkpoint import (
    METADATA_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    load_model,
    pretrained_dir,
    resolve_model_dir,
    save_model,
)
from xumx_slicq_v2.model import ModelConfig

from ..random_weights import random_model

#: A small Bark transform (9 blocks) and network.
TINY = ModelConfig(bins=12, fmin=100.0, hidden_size_1=4, hidden_size_2=5, time_filter_2=2)


def tiny_model(realtime: bool = False, seed: int = 0) -> torch.nn.Module:
    return random_model(dataclasses.replace(TINY, realtime=realtime), seed)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return save_model(tmp_path / "model", tiny_model(), metadata={"best_loss": 0.5, "args": {"lr": 0.001, "fbins": 1}})


def test_round_trip(model_dir: Path):
    original = tiny_model()
    text = (model_dir / METADATA_NAME).read_text()
    metadata = json.loads(text)
    assert text.startswith('{\n    "args": {')  # indent 4, sorted keys, as the reference writes it
    assert metadata["best_loss"] == 0.5 and metadata["args"]["lr"] == 0.001
    assert metadata["args"]["fbins"] == 12 and metadata["args"]["fscale"] == "bark"  # the config wins
    assert isinstance(torch.load(model_dir / WEIGHTS_NAME, weights_only=True), dict)  # a bare state_dict
    model, config, directory = load_model(model_dir)
    assert config == TINY and directory == model_dir
    assert not model.training and not any(parameter.requires_grad for parameter in model.parameters())
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    blocks = [torch.randn(1, 2, freq, 3, coefs, dtype=torch.complex64) for freq, coefs in model.block_shapes]
    with torch.no_grad():
        for got, expected in zip(model(blocks), original.eval()(blocks), strict=True):
            assert torch.equal(got, expected)
    assert not list(model_dir.glob(".*part*"))  # no temporary files left


def edit_weights(model_dir: Path, edit) -> None:
    state = torch.load(model_dir / WEIGHTS_NAME, weights_only=True)
    edit(state)
    torch.save(state, model_dir / WEIGHTS_NAME)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda state: state.pop("sliced_umx.3.cdaes.2.4.running_var"),
            "missing key 'sliced_umx.3.cdaes.2.4.running_var'",
        ),
        (
            lambda state: state.update({"sliced_umx.9.input_mean": torch.zeros(1)}),
            "unexpected key 'sliced_umx.9.input_mean'",
        ),
        (
            lambda state: state.update({"sliced_umx.0.cdaes.1.0.weight": torch.zeros(4, 2, 1, 3)}),
            r"key 'sliced_umx.0.cdaes.1.0.weight' has shape \(4, 2, 1, 3\), the model expects \(4, 2, \d+, \d+\)",
        ),
    ],
    ids=["missing", "unexpected", "wrong-shape"],
)
def test_strict_loading_names_the_key_and_file(model_dir: Path, edit, message):
    edit_weights(model_dir, edit)
    with pytest.raises(CheckpointError, match=message) as error:
        load_model(model_dir)
    assert str(model_dir / WEIGHTS_NAME) in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read the model metadata"),
        ('{"best_loss": 1}', "expected a JSON object with an 'args' object"),
        ('{"args": {"fbins": 12, "fmin": 100.0}}', "lack 'fscale'"),
        ('{"args": {"fscale": "bark", "fbins": 12, "fmin": 100.0, "nb_channels": 1}}', "nb_channels must be 2"),
    ],
)
def test_metadata_errors_name_the_file(model_dir: Path, content, message):
    (model_dir / METADATA_NAME).write_text(content)
    with pytest.raises(CheckpointError, match=message) as error:
        load_model(model_dir)
    assert str(model_dir / METADATA_NAME) in str(error.value)


def test_unreadable_or_foreign_weights(model_dir: Path):
    (model_dir / WEIGHTS_NAME).write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot load the weights"):
        load_model(model_dir)
    torch.save([torch.zeros(1)], model_dir / WEIGHTS_NAME)
    with pytest.raises(CheckpointError, match="expected a bare state_dict"):
        load_model(model_dir)


def test_realtime_must_agree_with_the_checkpoint(model_dir: Path):
    assert load_model(model_dir, realtime=False)[1].realtime is False
    with pytest.raises(CheckpointError, match="asked for a realtime model, but these weights are offline"):
        load_model(model_dir, realtime=True)


def test_resolve_model_dir(model_dir: Path, tmp_path: Path):
    assert resolve_model_dir(model_dir / WEIGHTS_NAME) == model_dir
    assert resolve_model_dir(str(model_dir)) == model_dir
    with pytest.raises(CheckpointError, match=r"no such model directory.*offline, realtime, demo"):
        resolve_model_dir(tmp_path / "nothing")
    (model_dir / WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match=f"lacks {WEIGHTS_NAME}"):
        resolve_model_dir(model_dir)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch) -> Path:
    """A private torch hub directory."""
    directory = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(directory))
    return directory


def test_named_model_is_downloaded_once(model_dir: Path, hub: Path, monkeypatch):
    monkeypatch.setitem(checkpoint.PRETRAINED_URLS, "offline", model_dir.as_uri())
    _, config, directory = load_model("offline")
    assert directory == pretrained_dir("offline") == hub / "checkpoints" / "xumx_slicq_v2_offline"
    assert sorted(path.name for path in directory.iterdir()) == [METADATA_NAME, WEIGHTS_NAME]  # no partial files
    assert config == TINY
    monkeypatch.setitem(checkpoint.PRETRAINED_URLS, "offline", (model_dir / "gone").as_uri())
    assert load_model("offline")[2] == directory  # already there: no download


def test_no_network_says_where_to_put_the_files(hub: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(checkpoint.PRETRAINED_URLS, "realtime", (tmp_path / "unreachable").as_uri())
    with pytest.raises(CheckpointError, match="could not download the 'realtime' model") as error:
        load_model("realtime")
    destination = hub / "checkpoints" / "xumx_slicq_v2_realtime"
    assert f"by hand at {destination / WEIGHTS_NAME} and {destination / METADATA_NAME}" in str(error.value)
    assert not destination.exists() or not any(destination.iterdir())


def test_git_lfs_pointer_is_rejected(model_dir: Path, hub: Path, monkeypatch):
    (model_dir / WEIGHTS_NAME).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 62466945\n")
    monkeypatch.setitem(checkpoint.PRETRAINED_URLS, "offline", model_dir.as_uri())
    with pytest.raises(CheckpointError, match="Git-LFS pointer"):
        load_model("offline")
    assert not (pretrained_dir("offline") / WEIGHTS_NAME).exists()


def test_demo_model(model_dir: Path, tmp_path: Path, monkeypatch):
    package = Path(checkpoint.__file__).resolve().parent
    assert package / "pretrained" / "demo" == checkpoint.DEMO_DIR  # package data, also in an installed wheel
    assert (checkpoint.DEMO_DIR / WEIGHTS_NAME).is_file() and (checkpoint.DEMO_DIR / METADATA_NAME).is_file()
    monkeypatch.setattr(checkpoint, "DEMO_DIR", tmp_path / "pretrained" / "demo")
    with pytest.raises(CheckpointError, match="demo weights are produced by the training recipe"):
        load_model("demo")
    monkeypatch.setattr(checkpoint, "DEMO_DIR", model_dir)
    assert load_model("demo")[2] == model_dir
