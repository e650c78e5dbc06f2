"""Reference-format model directories: round trip, strict loading, metadata errors, named models."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import json
import threading
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


@pytest.fixture
def published(model_dir: Path, monkeypatch) -> bytes:
    """``model_dir``'s weights stand in for the published offline weights (their size and SHA-256); returns them."""
    weights = (model_dir / WEIGHTS_NAME).read_bytes()
    monkeypatch.setitem(checkpoint.PUBLISHED_WEIGHTS, "offline", (len(weights), hashlib.sha256(weights).hexdigest()))
    return weights


def test_named_model_is_downloaded_once(model_dir: Path, hub: Path, published: bytes, monkeypatch):
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


class FakeServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 with HTTP Range support; the first request of a path in
    ``drop_after`` sends only that many bytes of the body and closes the connection."""

    def __init__(self, files: dict[str, bytes], drop_after: dict[str, int] | None = None, ranges: bool = True):
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.files, self.drop_after, self.requests = files, dict(drop_after or {}), []
        self.ranges = ranges  # False: Range headers are ignored (the whole file, status 200)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        if self.path not in server.files:
            self.send_error(404)
            return
        body, status, first = server.files[self.path], 200, 0
        if self.headers.get("Range") and server.ranges:
            first = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - first))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        cut = server.drop_after.pop(self.path, None)
        self.wfile.write(body[first:] if cut is None else body[first : first + cut])
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serving(files: dict[str, bytes], drop_after: dict[str, int] | None = None, ranges: bool = True):
    server = FakeServer(files, drop_after, ranges)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:48c86f90\nsize 62466945\n"


def test_downloads_are_verified_resumed_and_never_partial(model_dir: Path, hub: Path, published: bytes, monkeypatch):
    metadata = (model_dir / METADATA_NAME).read_bytes()
    target = pretrained_dir("offline") / WEIGHTS_NAME
    files = {
        "/lfs/xumx_slicq_v2.json": metadata,
        "/lfs/xumx_slicq_v2.pth": LFS_POINTER,
        "/short/xumx_slicq_v2.json": metadata,
        "/short/xumx_slicq_v2.pth": published[: len(published) // 2],
        "/good/xumx_slicq_v2.json": metadata,
        "/good/xumx_slicq_v2.pth": published,
    }
    with serving(files, drop_after={"/good/xumx_slicq_v2.pth": 1000}) as server:
        monkeypatch.setitem(checkpoint.PRETRAINED_URLS, "offline", f"{server.url}/lfs")
        with pytest.raises(CheckpointError, match=r"a Git LFS pointer \(\d+ bytes of text\), not the published "):
            load_model("offline")
        assert not target.exists()
        monkeypatch.setitem(checkpoint.PRETRAINED_URLS, "offline", f"{server.url}/short")
        truncated = rf"/short/xumx_slicq_v2.pth: {len(published) // 2:,} bytes, a truncated copy of the published"
        expected = rf" 'offline' weights \({len(published):,} bytes.*; run again"
        with pytest.raises(CheckpointError, match=truncated + expected):
            load_model("offline")
        assert not target.exists()
        monkeypatch.setitem(checkpoint.PRETRAINED_URLS, "offline", f"{server.url}/good")
        with pytest.raises(CheckpointError, match=r"could not download the 'offline' model .* run again to resume"):
            load_model("offline")  # the connection drops after 1000 bytes
        assert not target.exists() and (target.parent / f".{WEIGHTS_NAME}.download").stat().st_size == 1000
        _, config, directory = load_model("offline")  # resumes from byte 1000
        assert server.requests[-1] == ("/good/xumx_slicq_v2.pth", "bytes=1000-")
    assert config == TINY and target.read_bytes() == published
    assert sorted(path.name for path in directory.iterdir()) == [METADATA_NAME, WEIGHTS_NAME]


def test_interrupted_download_restarts_where_the_server_cannot_resume(
    model_dir: Path, hub: Path, published: bytes, monkeypatch
):
    files = {"/m/xumx_slicq_v2.json": (model_dir / METADATA_NAME).read_bytes(), "/m/xumx_slicq_v2.pth": published}
    partial = pretrained_dir("offline") / f".{WEIGHTS_NAME}.download"
    with serving(files, drop_after={"/m/xumx_slicq_v2.pth": 1000}, ranges=False) as server:
        monkeypatch.setitem(checkpoint.PRETRAINED_URLS, "offline", f"{server.url}/m")
        with pytest.raises(CheckpointError, match="run again to resume"):
            load_model("offline")
        assert partial.stat().st_size == 1000
        partial.write_bytes(b"x" * 1000)  # were these bytes appended to, the file would be wrong
        assert load_model("offline")[1] == TINY  # the server sends the whole file again: written from the start
        assert server.requests[-1] == ("/m/xumx_slicq_v2.pth", "bytes=1000-")
    assert (pretrained_dir("offline") / WEIGHTS_NAME).read_bytes() == published and not partial.exists()


def test_published_names_check_files_placed_by_hand(model_dir: Path, hub: Path, published: bytes, tmp_path: Path):
    directory = pretrained_dir("offline")
    directory.mkdir(parents=True)
    (directory / METADATA_NAME).write_bytes((model_dir / METADATA_NAME).read_bytes())
    for content, message in (
        (LFS_POINTER, "a Git LFS pointer"),
        (published[:-10], "a truncated copy of the published 'offline' weights"),
        (published[:-10] + b"0123456789", rf"{len(published):,} bytes, sha256 [0-9a-f]{{64}}, not the published"),
        (published + b"0", rf"{len(published) + 1:,} bytes, not the published 'offline' weights"),
    ):
        (directory / WEIGHTS_NAME).write_bytes(content)
        with pytest.raises(CheckpointError, match=message) as error:
            load_model("offline")
        assert f"place it at {directory / WEIGHTS_NAME}" in str(error.value)
        assert (directory / WEIGHTS_NAME).read_bytes() == content  # the user's file is left alone
    (directory / WEIGHTS_NAME).write_bytes(published)
    assert load_model("offline")[1] == TINY
    # a model directory given by path is the user's own: other weights load without a checksum
    own = save_model(tmp_path / "own", tiny_model(seed=1))
    assert load_model(own)[2] == own


def test_demo_model(model_dir: Path, tmp_path: Path, monkeypatch):
    package = Path(checkpoint.__file__).resolve().parent
    assert package / "pretrained" / "demo" == checkpoint.DEMO_DIR  # package data, also in an installed wheel
    assert (checkpoint.DEMO_DIR / WEIGHTS_NAME).is_file() and (checkpoint.DEMO_DIR / METADATA_NAME).is_file()
    monkeypatch.setattr(checkpoint, "DEMO_DIR", tmp_path / "pretrained" / "demo")
    with pytest.raises(CheckpointError, match="demo weights are produced by the training recipe"):
        load_model("demo")
    monkeypatch.setattr(checkpoint, "DEMO_DIR", model_dir)
    assert load_model("demo")[2] == model_dir
