"""The separator registry, and the real xumx_slicq_v2.Separator (small untrained network) behind the recipe."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from cadenza.config import run_name
from cadenza.data import Song
from cadenza.demix import run_demix
from cadenza.separators import (
    SeparatorError,
    TensorSeparator,
    load_separator,
    resolve_device,
    separator_identity,
)
from xumx_slicq_v2 import ChunkingConfig, ModelConfig, Separator
from xumx_slicq_v2.checkpoint import PUBLISHED_WEIGHTS
from xumx_slicq_v2.model import build_unmix
from xumx_slicq_v2.separator import separate

from ..random_weights import random_model


def test_real_separator_through_the_recipe(cad1_root, cad1, config_for, monkeypatch, tmp_path):
    """``separator.model=xumx_slicq_v2``: the registry loads ``Separator.from_pretrained(weights, ...)``; its
    stems are labelled with its own ``sources`` order."""
    loaded = []
    torch.manual_seed(0)
    tiny = Separator(build_unmix(ModelConfig(bins=40, hidden_size_1=8, hidden_size_2=8)))

    def from_pretrained(name_or_dir, realtime=None, device="cpu", runtime_backend=None, chunking=None):
        loaded.append((name_or_dir, device, runtime_backend))
        return tiny

    monkeypatch.setattr(Separator, "from_pretrained", staticmethod(from_pretrained))
    song = cad1.valid_songs[0]
    exp = tmp_path / "exp"
    cfg = config_for(cad1_root, exp, f"evaluate.songs=[{json.dumps(song)}]", "separator.device=cpu")
    assert run_demix(cfg).separated == [song]
    assert loaded == [("demo", "cpu", None)]
    mixture, _ = sf.read(cad1_root / "audio/musdb18hq/train" / song / "mixture.wav", dtype="float32")
    expected = tiny(torch.from_numpy(mixture.T.copy())[None])[0].numpy()
    for index, source in enumerate(tiny.sources):
        stem, rate = sf.read(exp / "separated" / song / f"{source}.wav", dtype="float32")
        assert rate == 44100 and stem.shape == mixture.shape
        np.testing.assert_allclose(stem.T, expected[index], rtol=1e-5, atol=1e-6)
    record = json.loads((exp / "separated" / song / "separation.json").read_text())
    assert (record["model"], record["weights"], record["stem_order"]) == ("xumx_slicq_v2", "demo", list(tiny.sources))


def test_the_wrapper_runs_the_librarys_streaming_path_at_the_models_rate():
    """A 16 kHz model behind the recipe's wrapper, given a 44.1 kHz mixture whose length fits no grid: the stems
    are the library's `separate` (resampled to 16 kHz and back, chunked through `Separator.stream`, cropped or
    padded to exactly the mixture's length)."""
    config = ModelConfig(scale="mel", bins=32, fmin=60.0, sample_rate=16000, hidden_size_1=4, hidden_size_2=4)
    model = Separator(random_model(config), ChunkingConfig(chunk_seconds=1.5, context_seconds=2.5))
    streamed = []
    stream = model.stream

    def counted_stream(audio, progress=False):
        for start, piece in stream(audio, progress):
            streamed.append((start, piece.shape[-1]))
            yield start, piece

    model.stream = counted_stream
    mixture = 0.1 * np.random.default_rng(3).standard_normal((2, 4 * 44100 + 37)).astype(np.float32)
    stems = TensorSeparator(model).separate(mixture, 44100, Song("a song", "valid"))
    assert len(streamed) >= 2 and streamed[0][0] == 0  # chunk by chunk, at the model's rate
    assert sum(n for _, n in streamed) == pytest.approx(mixture.shape[1] * 16000 / 44100, abs=2)
    streamed.clear()
    expected = separate(mixture, 44100, separator=model)
    assert list(stems) == list(model.sources)
    for name in model.sources:
        assert stems[name].shape == mixture.shape and stems[name].dtype == np.float32
        np.testing.assert_array_equal(stems[name], expected[name])
    assert np.abs(stems["vocals"][:, -100:]).max() > 0  # the end is separated audio, not padding alone


def test_unknown_model_is_an_error(cad1_root, config_for, tmp_path):
    cfg = config_for(cad1_root, tmp_path / "exp", "separator.model=demucs")
    with pytest.raises(SeparatorError, match=r"separator.model='demucs' is unknown; choose one of \["):
        load_separator(cfg.separator, cfg)


@pytest.mark.parametrize(
    ("device", "resolved"), [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"), ("gpu2", "cuda:2")]
)
def test_device_names(device, resolved):
    assert resolve_device(device) == resolved


def test_device_default_and_errors():
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SeparatorError, match=r"separator\.device='tpu'"):
        resolve_device("tpu")


def test_identity_and_run_name_of_a_weights_folder(tmp_path):
    weights = tmp_path / "my_model"
    weights.mkdir()
    (weights / "xumx_slicq_v2.pth").write_bytes(b"weights")
    (weights / "xumx_slicq_v2.json").write_text("{}")
    separator_cfg = OmegaConf.create({"model": "xumx_slicq_v2", "weights": str(weights)})
    assert separator_identity(separator_cfg) == {
        "model": "xumx_slicq_v2",
        "weights": str(weights.resolve()),
        "weights_sha256": hashlib.sha256(b"weights").hexdigest(),
    }
    offline = OmegaConf.create({"model": "xumx_slicq_v2", "weights": "offline"})
    assert separator_identity(offline)["weights_sha256"] == PUBLISHED_WEIGHTS["offline"][1]  # checked when loaded
    assert run_name("xumx_slicq_v2", str(weights)) == "xumx_slicq_v2_my_model"
    assert run_name("xumx_slicq_v2", "offline") == "xumx_slicq_v2_offline"
    oracle = OmegaConf.create({"model": "oracle", "weights": "demo"})
    assert separator_identity(oracle) == {"model": "oracle", "weights": None}
    assert run_name("oracle", "demo") == "oracle"
