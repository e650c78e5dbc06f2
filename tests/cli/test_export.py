"""ONNX/TorchScript export and the onnx runtime backends."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from xumx_slicq_v2 import backends, export, model
from xumx_slicq_v2.backends import build_network, cached_onnx
from xumx_slicq_v2.checkpoint import save_model
from xumx_slicq_v2.export import FINGERPRINT_KEY, ONNX_FILENAME, example_blocks, input_names, output_names
from xumx_slicq_v2.model import ModelConfig, build_unmix
from xumx_slicq_v2.separator import Separator

from ..random_weights import random_model
from .conftest import SMALL_CONFIG, music


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max() / expected.abs().max())


def load_small(model_dir, **overrides) -> torch.nn.Module:
    """The small model saved in ``model_dir`` (its realtime/offline mode given in ``overrides``)."""
    model = build_unmix(ModelConfig(**SMALL_CONFIG, **overrides))
    model.load_state_dict(torch.load(model_dir / "xumx_slicq_v2.pth"))
    return model.eval()


@pytest.mark.slow
def test_onnx_cpu_equals_torch_cpu_for_the_realtime_model(tmp_path, reference_vectors, formula_state_dict) -> None:
    model = build_unmix(ModelConfig(realtime=True))
    model.load_state_dict(formula_state_dict, strict=True)
    model_dir = save_model(tmp_path / "realtime", model)
    audio = torch.from_numpy(np.load(reference_vectors / "input.npy"))
    torch_stems = Separator.from_pretrained(str(model_dir), runtime_backend="torch-cpu")(audio)
    onnx_separator = Separator.from_pretrained(str(model_dir), runtime_backend="onnx-cpu")
    assert (model_dir / ONNX_FILENAME).is_file()  # exported on first use, next to the weights
    onnx_stems = onnx_separator(audio)
    assert relative_error(onnx_stems, torch_stems) <= 1e-4
    expected = torch.from_numpy(np.load(reference_vectors / "separator_realtime.npy")).permute(1, 0, 2, 3)
    assert relative_error(onnx_stems, expected) <= 1e-4


def assert_onnx_layout(path, block_count: int) -> None:
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version >= 17
    assert [i.name for i in graph.graph.input] == input_names(block_count)
    assert [o.name for o in graph.graph.output] == output_names(block_count)
    for value, axis in ((graph.graph.input[0], 3), (graph.graph.output[0], 4)):
        dim = value.type.tensor_type.shape.dim[axis]
        assert dim.dim_param == "slices" and not dim.HasField("dim_value")


@pytest.mark.parametrize("realtime", [True, False])
def test_onnx_backend_matches_torch_on_another_batch_and_length(
    tmp_path, realtime, exported_realtime_dir, offline_dir
) -> None:
    model_dir = exported_realtime_dir if realtime else shutil.copytree(offline_dir, tmp_path / "offline")
    model = load_small(model_dir, realtime=realtime)
    network = build_network("onnx-cpu", model, model_dir)  # the offline network is exported here
    assert_onnx_layout(model_dir / ONNX_FILENAME, len(model.block_shapes))
    audio = torch.from_numpy(np.stack([music(6.0, 16000, seed=1), music(6.0, 16000, seed=2)]))
    expected = Separator(model)(audio)
    assert relative_error(Separator(model, network=network)(audio), expected) <= 1e-4


def test_onnx_cache_is_reused_refreshed_and_never_overwrites_foreign_files(
    tmp_path, exported_realtime_dir, private_torch_hub, monkeypatch
) -> None:
    model_dir = shutil.copytree(exported_realtime_dir, tmp_path / "model")
    model = load_small(model_dir, realtime=True)
    path = model_dir / ONNX_FILENAME
    mtime = path.stat().st_mtime_ns
    assert cached_onnx(model, model_dir) == path and path.stat().st_mtime_ns == mtime  # reused

    retrained = random_model(ModelConfig(**SMALL_CONFIG, realtime=True), seed=1)
    assert cached_onnx(retrained, model_dir) == path and path.stat().st_mtime_ns != mtime  # exported again
    assert [p.key for p in onnx.load(str(path)).metadata_props].count(FINGERPRINT_KEY) == 1

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / ONNX_FILENAME).write_bytes(b"someone else's graph")
    hub_path = cached_onnx(model, foreign)
    assert hub_path.parent == private_torch_hub / "checkpoints" and hub_path.is_file()
    assert (foreign / ONNX_FILENAME).read_bytes() == b"someone else's graph"

    package_data = Path(backends.__file__).resolve().parent / "pretrained" / "demo"  # the demo weights
    assert not backends._writable(package_data) and backends._writable(tmp_path)  # nothing into the package

    monkeypatch.setattr(backends, "_writable", lambda folder: False)  # e.g. a read-only install
    elsewhere = tmp_path / "read_only"
    elsewhere.mkdir()
    assert cached_onnx(model, elsewhere) == hub_path  # found in the hub cache
    assert list(elsewhere.iterdir()) == []


def test_onnx_cuda_falls_back_to_cpu_without_cuda_provider(exported_realtime_dir) -> None:
    model = load_small(exported_realtime_dir, realtime=True)
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider"):
        network = build_network("onnx-cuda", model, exported_realtime_dir)
    assert network.session.get_providers() == ["CPUExecutionProvider"]
    blocks = example_blocks(model, slices=5)
    with torch.inference_mode():
        expected = model.forward_real(blocks)
    for actual, reference in zip(network(blocks), expected, strict=True):
        assert relative_error(actual, reference) <= 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_export_command_onnx_and_torchscript(tmp_path, offline_dir, capsys) -> None:
    onnx_file = tmp_path / "offline.onnx"
    assert export.main(["--model", str(offline_dir), "--target", "onnx", "--out", str(onnx_file)]) == 0
    assert "Wiener-EM is not part of the exported graph" in capsys.readouterr().err
    model = load_small(offline_dir, realtime=False)
    assert_onnx_layout(onnx_file, len(model.block_shapes))

    script_file = tmp_path / "offline.pt"
    assert export.main(["--model", str(offline_dir), "--target", "torchscript", "--out", str(script_file)]) == 0
    traced = torch.jit.load(str(script_file))
    phase_only = load_small(offline_dir, realtime=False, wiener_iterations=0)  # the graph stops before Wiener-EM
    blocks = example_blocks(model, slices=9, batch=3, seed=5)
    with torch.inference_mode():
        for actual, reference in zip(traced(*blocks), phase_only.forward_real(blocks), strict=True):
            assert relative_error(actual, reference) <= 1e-5

    with pytest.raises(SystemExit, match="missing"):
        export.main(["--model", str(tmp_path / "missing"), "--out", str(onnx_file)])


def test_export_forms_equal_the_torch_forms(monkeypatch) -> None:
    """The ONNX-friendly forms of three operations give the torch forms' values (checked in eager torch)."""
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4 * 6, 7, 9, generator=generator)
    mix = torch.randn(2, 1, 2, 5, 11, 2, generator=generator)
    masks = torch.rand(2, 4, 2, 5, 11, generator=generator)
    cases = [
        (model.stride_one_conv_transpose, (x, torch.randn(24, 5, 3, 4, generator=generator), torch.randn(20), 4)),
        (model.half_overlap_conv_transpose, (x, torch.randn(24, 2, 3, 8, generator=generator), torch.randn(8), 4)),
        (model.mask_mixture, (masks, mix)),
    ]
    eager = [function(*args) for function, args in cases]
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    for (function, args), expected in zip(cases, eager, strict=True):
        torch.testing.assert_close(function(*args), expected, rtol=1e-5, atol=1e-5)


def test_exported_realtime_graph_uses_the_onnx_runtime_friendly_forms(exported_realtime_dir) -> None:
    blocks = len(load_small(exported_realtime_dir, realtime=True).block_shapes)
    ops = Counter(node.op_type for node in onnx.load(str(exported_realtime_dir / ONNX_FILENAME)).graph.node)
    assert ops["ScatterND"] == 0 and ops["MatMul"] == 0  # not the matrix form of the last layer
    assert ops["ConvTranspose"] == blocks and ops["Conv"] == 3 * blocks  # only the strided last layer transposed
