"""Export the network to ONNX or TorchScript, and run an exported ONNX file as the separator's network.

python -m xumx_slicq_v2.export --model realtime --target onnx --out realtime.onnx

Only the network is exported (the sliCQT and its inverse stay in torch, as in the reference). The graph takes
the real/imag sliCQT blocks ``xcomplex{i}`` ``(batch, 2, freq, slices, coefs, 2)`` and returns the estimates
``ycomplex{i}`` ``(batch, 4, 2, freq, slices, coefs, 2)`` (targets in `SOURCES` order), with dynamic batch and
slice axes.

The offline models' Wiener-EM is not part of the graph: it splits every block into windows of frames whose
count depends on the number of slices, which a traced graph would freeze to the example's value. Their graph
returns the mixture-phase estimates ``mask * X`` (Wiener-EM's starting point) and `OnnxNetwork` applies
`xumx_slicq_v2.wiener.wiener_real` to them in torch; for realtime models the graph is the whole network.

The onnx runtime backends use an ONNX file cached beside the weights (``<model dir>/xumx_slicq_v2.onnx``), or
in the torch hub cache when that folder is not writable or holds a file that is not ours. The file carries a
fingerprint of the weights and configuration in its metadata and is exported again when they change.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ._optional import exit_if_missing, require
from .audio import atomic_path
from .model import SOURCES, ModelConfig, Unmix
from .wiener import wiener_real

#: File name of the cached ONNX network next to the weights, and of a TorchScript export.
ONNX_FILENAME = "xumx_slicq_v2.onnx"
TORCHSCRIPT_FILENAME = "xumx_slicq_v2.pt"
#: ONNX opset of the exported graphs.
ONNX_OPSET = 17
#: Metadata keys written into our ONNX files.
FINGERPRINT_KEY = "xumx_slicq_v2.fingerprint"
WIENER_KEY = "xumx_slicq_v2.wiener_in_torch"
#: Changes whenever the exported graph's layout changes, so that older cached files are exported again.
EXPORT_LAYOUT_VERSION = "2"
#: Slices of the example input used for tracing, and of the second input used to check the dynamic axis.
TRACE_SLICES, CHECK_SLICES = 4, 7
#: Relative tolerance of the post-export check (float32 graph against eager torch).
CHECK_TOLERANCE = 1e-4


def input_names(count: int) -> list[str]:
    return [f"xcomplex{index}" for index in range(count)]


def output_names(count: int) -> list[str]:
    return [f"ycomplex{index}" for index in range(count)]


def wiener_in_torch(config: ModelConfig) -> bool:
    """Whether the network of ``config`` needs Wiener-EM after the exported graph (offline models)."""
    return not config.realtime and config.wiener_iterations > 0


def model_fingerprint(model: Unmix) -> str:
    """SHA-256 of the model configuration, the weights and the export layout (hex)."""
    digest = hashlib.sha256(EXPORT_LAYOUT_VERSION.encode())
    digest.update(json.dumps(dataclasses.asdict(model.config), sort_keys=True).encode())
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        digest.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


class _TupleNetwork(nn.Module):
    """`Unmix.forward_real` with one positional tensor per block and a tuple out (what the exporters trace)."""

    def __init__(self, model: Unmix) -> None:
        super().__init__()
        self.model = model

    def forward(self, *blocks: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.model.forward_real(list(blocks)))


def traceable_network(model: Unmix) -> nn.Module:
    """A CPU copy of ``model`` in eval mode whose output is what the exported graph returns: the whole
    network for realtime models, the mixture-phase estimates (no Wiener-EM) for offline models."""
    config = model.config
    if wiener_in_torch(config):
        config = dataclasses.replace(config, wiener_iterations=0)
    copy = Unmix(config, model.block_shapes)
    copy.load_state_dict({key: value.detach().cpu() for key, value in model.state_dict().items()})
    return _TupleNetwork(copy).eval()


def example_blocks(model: Unmix, slices: int, batch: int = 1, seed: int = 0) -> list[Tensor]:
    """Random real/imag blocks ``(batch, 2, freq, slices, coefs, 2)`` for every block of ``model``."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 2, freq, slices, coefs, 2, generator=generator) for freq, coefs in model.block_shapes]


def _check_outputs(name: str, outputs: Sequence[np.ndarray | Tensor], expected: Sequence[Tensor]) -> None:
    """Raise if an exported network's outputs differ from eager torch beyond `CHECK_TOLERANCE`."""
    for index, (output, reference) in enumerate(zip(outputs, expected, strict=True)):
        output = torch.as_tensor(np.asarray(output))
        scale = float(reference.abs().max()) or 1.0
        error = float((output - reference).abs().max()) / scale
        if output.shape != reference.shape or not error <= CHECK_TOLERANCE:
            raise RuntimeError(
                f"{name}: exported network differs from torch on block {index} "
                f"(shape {tuple(output.shape)} vs {tuple(reference.shape)}, relative error {error:.2e})"
            )


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence the tracer's warnings about Python-side shape checks (they hold for any slice count) and the
    exporter's deprecation notices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        yield


def export_onnx(model: Unmix, path: str | os.PathLike, opset: int = ONNX_OPSET, check: bool = True) -> Path:
    """Write ``model``'s network as ONNX to ``path`` (atomically) and return the path.

    Dynamic axes: batch (0) and slices (3 of the inputs, 4 of the outputs). With ``check`` the file is run with
    ONNX Runtime on another batch size and slice count and compared with torch (an error if they differ).
    """
    onnx = require("onnx", extra="onnx", purpose="ONNX export")
    network = traceable_network(model)
    count = len(model.block_shapes)
    dynamic_axes = {name: {0: "batch", 3: "slices"} for name in input_names(count)}
    dynamic_axes |= {name: {0: "batch", 4: "slices"} for name in output_names(count)}
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad():
        with _quiet_tracing():
            torch.onnx.export(
                network,
                tuple(example_blocks(model, TRACE_SLICES)),
                str(tmp),
                input_names=input_names(count),
                output_names=output_names(count),
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        graph = onnx.load(str(tmp))
        graph.doc_string = "xumx-sliCQ-V2 network: sliCQT blocks (real/imag) -> target estimates (real/imag)"
        metadata = {FINGERPRINT_KEY: model_fingerprint(model), WIENER_KEY: str(wiener_in_torch(model.config))}
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(tmp))
        if check:
            blocks = example_blocks(model, CHECK_SLICES, batch=2, seed=1)
            session = _session(tmp, cuda=False)
            outputs = session.run(None, dict(zip(input_names(count), (b.numpy() for b in blocks), strict=True)))
            _check_outputs(str(path), outputs, network(*blocks))
    return path


def export_torchscript(model: Unmix, path: str | os.PathLike, check: bool = True) -> Path:
    """Write ``model``'s network as a traced TorchScript module to ``path`` (atomically).

    The module takes one real/imag tensor per block and returns a tuple (same layout as the ONNX graph).
    """
    network = traceable_network(model)
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad():
        with _quiet_tracing():  # TorchScript is deprecated in favour of torch.export; the reference used it
            traced = torch.jit.trace(network, tuple(example_blocks(model, TRACE_SLICES)), check_trace=False)
            torch.jit.save(traced, str(tmp))
            if check:
                blocks = example_blocks(model, CHECK_SLICES, batch=2, seed=1)
                _check_outputs(str(path), torch.jit.load(str(tmp))(*blocks), network(*blocks))
    return path


# -- ONNX Runtime backend --------------------------------------------------------------------------------------


def _session(path: str | os.PathLike, cuda: bool):  # -> onnxruntime.InferenceSession
    """An ONNX Runtime session with as many intra-op threads as torch uses (not spinning when idle, no CPU memory
    arena); on torch's current CUDA device first when ``cuda`` (CPU as fallback), with a warning when CUDA is not
    what it got."""
    ort = require("onnxruntime", extra="onnx-cuda" if cuda else "onnx", purpose="ONNX Runtime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    # The sliCQT runs in torch between the graph's runs: idle ONNX Runtime threads must not spin on the cores
    # torch needs (spinning also collapses throughput on shared machines); no CPU arena: a lower peak RSS.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False
    providers: list = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        device_id = torch.cuda.current_device() if torch.cuda.is_available() else 0
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device_id}))
    session = ort.InferenceSession(str(path), options, providers=providers)
    if cuda and "CUDAExecutionProvider" not in session.get_providers():
        warnings.warn(
            "onnx-cuda: ONNX Runtime cannot use CUDA here (no CUDAExecutionProvider: install onnxruntime-gpu "
            "matching your CUDA); running the network on the CPU",
            RuntimeWarning,
            stacklevel=3,
        )
    return session


class OnnxNetwork:
    """A `xumx_slicq_v2.separator.NetworkFn` backed by an ONNX Runtime session.

    Called with real/imag blocks ``(batch, 2, freq, slices, coefs, 2)`` (torch, any device), returns the
    estimates ``(batch, 4, 2, freq, slices, coefs, 2)`` on the blocks' device. CUDA tensors are bound in place
    (IO binding) when the session runs on CUDA; otherwise they go through host memory. Offline models get
    their Wiener-EM in torch after the graph.
    """

    def __init__(self, session, config: ModelConfig, block_count: int) -> None:
        self.session = session
        self.config = config
        self.inputs = input_names(block_count)
        self.outputs = output_names(block_count)
        self.on_cuda = "CUDAExecutionProvider" in session.get_providers()
        self.wiener = wiener_in_torch(config)

    def __call__(self, blocks: Sequence[Tensor]) -> list[Tensor]:
        if len(blocks) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} sliCQT blocks, got {len(blocks)}")
        if self.on_cuda and blocks[0].is_cuda:
            estimates = self._run_bound(blocks)
        else:
            feed = {name: block.detach().cpu().float().contiguous().numpy() for name, block in zip(self.inputs, blocks)}
            outputs = self.session.run(self.outputs, feed)  # only `estimates` may keep them (see the Wiener-EM)
            estimates = [torch.from_numpy(output).to(blocks[0].device) for output in outputs]
            del outputs
        if self.wiener:  # block by block, each mixture-phase estimate freed once refined (lower peak memory)
            for index, block in enumerate(blocks):
                estimates[index] = self._wiener(estimates[index], block)
        return estimates

    def _run_bound(self, blocks: Sequence[Tensor]) -> list[Tensor]:
        """Run on CUDA tensors without host copies: inputs and preallocated outputs bound by pointer."""
        device = blocks[0].device
        device_id = device.index if device.index is not None else torch.cuda.current_device()
        binding = self.session.io_binding()
        inputs = [block.detach().float().contiguous() for block in blocks]
        outputs = [block.new_empty(block.shape[0], len(SOURCES), *block.shape[1:]) for block in inputs]
        for name, tensor in zip(self.inputs, inputs, strict=True):
            binding.bind_input(name, "cuda", device_id, np.float32, list(tensor.shape), tensor.data_ptr())
        for name, tensor in zip(self.outputs, outputs, strict=True):
            binding.bind_output(name, "cuda", device_id, np.float32, list(tensor.shape), tensor.data_ptr())
        torch.cuda.current_stream(device).synchronize()  # inputs written by torch's stream before ORT reads
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return outputs

    def _wiener(self, estimate: Tensor, mix: Tensor) -> Tensor:
        """Wiener-EM of one block from its mixture-phase estimates ``(batch, 4, 2, freq, slices, coefs, 2)``
        (their magnitude is mask * |X|) and the mixture ``(batch, 2, freq, slices, coefs, 2)``."""
        batch, targets, channels, freq, slices, coefs, _ = estimate.shape
        magnitude = estimate.square().sum(-1).sqrt().reshape(batch, targets, channels, freq, slices * coefs)
        refined = wiener_real(
            magnitude,
            mix.reshape(batch, channels, freq, slices * coefs, 2),
            iterations=self.config.wiener_iterations,
            window=self.config.wiener_window,
            eps=self.config.wiener_eps,
        )
        return refined.reshape(estimate.shape)


def _file_fingerprint(path: Path) -> str | None:
    """Our fingerprint stored in an ONNX file, or ``None`` if it has none or cannot be read."""
    onnx = require("onnx", extra="onnx", purpose="ONNX Runtime caching")
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    return next((entry.value for entry in graph.metadata_props if entry.key == FINGERPRINT_KEY), None)


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def cached_onnx(model: Unmix, model_dir: str | os.PathLike | None) -> Path:
    """The ONNX file of ``model``, exported first if no up-to-date one exists.

    Looks in ``model_dir`` (``xumx_slicq_v2.onnx``), else in ``<torch hub>/checkpoints``; exports next to the
    weights when that folder is writable and holds no foreign file of that name (files are never overwritten
    unless they carry our metadata), else into the hub cache.
    """
    fingerprint = model_fingerprint(model)
    hub_path = Path(torch.hub.get_dir()) / "checkpoints" / f"xumx_slicq_v2_{fingerprint[:16]}.onnx"
    candidates = [Path(model_dir) / ONNX_FILENAME] if model_dir is not None else []
    candidates.append(hub_path)
    for candidate in candidates:
        if candidate.is_file() and _file_fingerprint(candidate) == fingerprint:
            return candidate
    local = candidates[0]
    ours_or_absent = not local.exists() or _file_fingerprint(local) is not None
    target = local if model_dir is not None and _writable(local.parent) and ours_or_absent else hub_path
    print(f"exporting the network to ONNX (once per model): {target}", file=sys.stderr)
    return export_onnx(model, target)


def onnx_network(model: Unmix, model_dir: str | os.PathLike | None, cuda: bool = False) -> OnnxNetwork:
    """A `NetworkFn` running ``model``'s network with ONNX Runtime (CUDA or CPU), from the cached ONNX file."""
    return OnnxNetwork(_session(cached_onnx(model, model_dir), cuda), model.config, len(model.block_shapes))


# -- command line ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xumx_slicq_v2.export",
        description=__doc__.split("\n\n")[0] + " The sliCQT and its inverse stay in torch.",
        epilog=(
            "Offline models: the exported graph returns mixture-phase estimates (mask * mix); Wiener-EM is "
            "applied in torch after it (xumx_slicq_v2.wiener.wiener_real), as the onnx backends of the "
            "command line do."
        ),
    )
    parser.add_argument("--model", required=True, help="offline, realtime, demo, or a model directory")
    parser.add_argument("--target", choices=("onnx", "torchscript"), default="onnx", help="default: onnx")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output file (default: {ONNX_FILENAME} or {TORCHSCRIPT_FILENAME} in the model directory)",
    )
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset, >= 17 (default {ONNX_OPSET})")
    parser.add_argument("--no-check", action="store_true", help="skip running the export against torch")
    return parser


@exit_if_missing()
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.opset < ONNX_OPSET:
        raise SystemExit(f"error: --opset must be >= {ONNX_OPSET}")
    from .checkpoint import load_model

    try:
        model, _config, model_dir = load_model(args.model, device="cpu")
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from err
    filename = ONNX_FILENAME if args.target == "onnx" else TORCHSCRIPT_FILENAME
    out = args.out or Path(model_dir) / filename
    if wiener_in_torch(model.config):
        print(
            "note: offline model: Wiener-EM is not part of the exported graph (its window count depends on the "
            "number of slices, which tracing would freeze); the graph outputs the mixture-phase estimates "
            "mask * mix, and Wiener-EM runs in torch after it (xumx_slicq_v2.wiener.wiener_real)",
            file=sys.stderr,
        )
    if args.target == "onnx":
        export_onnx(model, out, opset=args.opset, check=not args.no_check)
    else:
        export_torchscript(model, out, check=not args.no_check)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
