"""Export the network to ONNX or TorchScript.

python -m xumx_slicq_v2.export --model realtime --target onnx --out realtime.onnx

Only the network is exported (the sliCQT and its inverse stay in torch, as in the reference). The graph takes
the real/imag sliCQT blocks ``xcomplex{i}`` ``(batch, 2, freq, slices, coefs, 2)`` and returns the estimates
``ycomplex{i}`` ``(batch, 4, 2, freq, slices, coefs, 2)`` (targets in `SOURCES` order), with dynamic batch and
slice axes.

The offline models' Wiener-EM is not part of the graph: it splits every block into windows of frames whose
count depends on the number of slices, which a traced graph would freeze to the example's value. Their graph
returns the mixture-phase estimates ``mask * X`` (Wiener-EM's starting point), and the onnx runtime backends
(`xumx_slicq_v2.backends`, which also cache the exported file) apply `xumx_slicq_v2.model.wiener_block` to them
in torch; for realtime models the graph is the whole network. Each file carries a fingerprint of the weights
and configuration in its metadata.
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
from typing import TYPE_CHECKING

from ._optional import exit_if_missing, require
from .audio import atomic_path
from .backends import onnx_session

if TYPE_CHECKING:  # torch and the model load when something is exported (after the arguments are parsed)
    import numpy as np
    from torch import Tensor, nn

    from .model import ModelConfig, Unmix

#: File name of the ONNX network next to the weights (the onnx backends' cache), and of a TorchScript export.
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


def traceable_network(model: Unmix) -> nn.Module:
    """A CPU copy of ``model`` in eval mode whose output is what the exported graph returns: the whole
    network for realtime models, the mixture-phase estimates (no Wiener-EM) for offline models; one
    positional tensor per block in and a tuple out (`xumx_slicq_v2.model.PositionalUnmix`)."""
    from .model import PositionalUnmix, Unmix

    config = model.config
    if wiener_in_torch(config):
        config = dataclasses.replace(config, wiener_iterations=0)
    copy = Unmix(config, model.block_shapes)
    copy.load_state_dict({key: value.detach().cpu() for key, value in model.state_dict().items()})
    return PositionalUnmix(copy).eval()


def example_blocks(model: Unmix, slices: int, batch: int = 1, seed: int = 0) -> list[Tensor]:
    """Random real/imag blocks ``(batch, 2, freq, slices, coefs, 2)`` for every block of ``model``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 2, freq, slices, coefs, 2, generator=generator) for freq, coefs in model.block_shapes]


def _check_outputs(name: str, outputs: Sequence[np.ndarray | Tensor], expected: Sequence[Tensor]) -> None:
    """Raise if an exported network's outputs differ from eager torch beyond `CHECK_TOLERANCE`."""
    import numpy as np
    import torch

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
    import torch

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
    import torch

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
            session = onnx_session(tmp, cuda=False)
            outputs = session.run(None, dict(zip(input_names(count), (b.numpy() for b in blocks), strict=True)))
            _check_outputs(str(path), outputs, network(*blocks))
    return path


def export_torchscript(model: Unmix, path: str | os.PathLike, check: bool = True) -> Path:
    """Write ``model``'s network as a traced TorchScript module to ``path`` (atomically).

    The module takes one real/imag tensor per block and returns a tuple (same layout as the ONNX graph).
    """
    import torch

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


# -- command line ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xumx_slicq_v2.export",
        description=__doc__.split("\n\n")[0] + " The sliCQT and its inverse stay in torch.",
        epilog=(
            "Offline models: the exported graph returns mixture-phase estimates (mask * mix); Wiener-EM is "
            "applied in torch after it (xumx_slicq_v2.model.wiener_block), as the onnx backends of the "
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
            "mask * mix, and Wiener-EM runs in torch after it (xumx_slicq_v2.model.wiener_block)",
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
