"""Runtime backends of the separator's network: torch or ONNX Runtime, on the CPU or CUDA.

    network, device = build_network("onnx-cpu", model, model_dir)   # a NetworkFn and the torch device

Every backend is a `NetworkFn`: real/imag sliCQT blocks ``(batch, 2, freq, slices, coefs, 2)`` in, estimates
``(batch, 4, 2, freq, slices, coefs, 2)`` out (`xumx_slicq_v2.separator.Separator` runs the sliCQT around it).
The torch backends are `Unmix.forward_real`; the onnx backends run the ONNX file cached beside the weights
(``<model dir>/xumx_slicq_v2.onnx``, or in the torch hub cache when that folder is not writable or holds a file
that is not ours), exported by `xumx_slicq_v2.export` on first use and again when the weights change (the file
carries their fingerprint in its metadata). Offline models run their Wiener-EM in torch after the graph
(`xumx_slicq_v2.model.wiener_block`, as the torch network does).

This module imports torch and ONNX Runtime only when a backend is built: command lines list
`RUNTIME_BACKENDS` in their ``--help`` without loading them.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._optional import require

if TYPE_CHECKING:
    from torch import Tensor

    from .model import ModelConfig, Unmix

#: Runtime backends, with the reference's names.
RUNTIME_BACKENDS = ("torch-cpu", "torch-cuda", "onnx-cpu", "onnx-cuda")

#: Signature of a backend: real/imag blocks ``(batch, 2, F, S, T, 2)`` in, real/imag estimates
#: ``(batch, targets, 2, F, S, T, 2)`` out.
NetworkFn = Callable[[Sequence["Tensor"]], Sequence["Tensor"]]


def check_backend(backend: str) -> None:
    """Raise ``ValueError`` for an unknown backend and `MissingDependency` (naming the extra to install) when
    an onnx backend's packages are missing; call before loading anything."""
    if backend not in RUNTIME_BACKENDS:
        raise ValueError(f"unknown runtime backend {backend!r}; choose one of {', '.join(RUNTIME_BACKENDS)}")
    if backend.startswith("onnx"):
        extra = "onnx-cuda" if backend == "onnx-cuda" else "onnx"
        for module in ("onnx", "onnxruntime"):
            require(module, extra=extra, purpose=f"the {backend} runtime backend")


def backend_device(backend: str, device: str | None = None) -> str:
    """The torch device of ``backend``: ``cpu``, or ``device`` (default ``cuda``) for the CUDA backends, which
    are an error when torch sees no CUDA device."""
    import torch

    if not backend.endswith("cuda"):
        return "cpu"
    if not torch.cuda.is_available():
        raise RuntimeError(f"runtime backend {backend} needs a CUDA device, and torch sees none")
    return str(device) if device is not None and torch.device(device).type == "cuda" else "cuda"


def build_network(backend: str, model: Unmix, model_dir: str | os.PathLike | None = None) -> NetworkFn:
    """The `NetworkFn` of ``backend`` for ``model`` (already on the backend's device): its own `forward_real`
    for torch, an `OnnxNetwork` on the cached ONNX file (exported first if needed) for onnx."""
    check_backend(backend)
    if backend.startswith("torch"):
        return model.forward_real
    session = onnx_session(cached_onnx(model, model_dir), cuda=backend == "onnx-cuda")
    return OnnxNetwork(session, model.config, len(model.block_shapes))


# -- ONNX Runtime ----------------------------------------------------------------------------------------------


def onnx_session(path: str | os.PathLike, cuda: bool):  # -> onnxruntime.InferenceSession
    """An ONNX Runtime session with as many intra-op threads as torch uses (not spinning when idle, no CPU memory
    arena); on torch's current CUDA device first when ``cuda`` (CPU as fallback), with a warning when CUDA is not
    what it got."""
    import torch

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
    """A `NetworkFn` backed by an ONNX Runtime session of an exported network (`xumx_slicq_v2.export`).

    Called with real/imag blocks ``(batch, 2, freq, slices, coefs, 2)`` (torch, any device), returns the
    estimates ``(batch, 4, 2, freq, slices, coefs, 2)`` on the blocks' device. CUDA tensors are bound in place
    (IO binding) when the session runs on CUDA; otherwise they go through host memory. Offline models get
    their Wiener-EM in torch after the graph.
    """

    def __init__(self, session, config: ModelConfig, block_count: int) -> None:
        from .export import input_names, output_names, wiener_in_torch

        self.session = session
        self.config = config
        self.inputs = input_names(block_count)
        self.outputs = output_names(block_count)
        self.on_cuda = "CUDAExecutionProvider" in session.get_providers()
        self.wiener = wiener_in_torch(config)

    def __call__(self, blocks: Sequence[Tensor]) -> list[Tensor]:
        import torch

        from .model import wiener_block

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
                # the graph's mixture-phase estimates have magnitude mask * |X|: Wiener-EM's input
                estimates[index] = wiener_block(estimates[index].square().sum(-1).sqrt(), block, self.config)
        return estimates

    def _run_bound(self, blocks: Sequence[Tensor]) -> list[Tensor]:
        """Run on CUDA tensors without host copies: inputs and preallocated outputs bound by pointer."""
        import numpy as np
        import torch

        from .model import SOURCES

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


# -- the ONNX file cache ---------------------------------------------------------------------------------------


def _file_fingerprint(path: Path) -> str | None:
    """Our fingerprint stored in an ONNX file, or ``None`` if it has none or cannot be read."""
    from .export import FINGERPRINT_KEY

    onnx = require("onnx", extra="onnx", purpose="the ONNX file cache")
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    return next((entry.value for entry in graph.metadata_props if entry.key == FINGERPRINT_KEY), None)


def _writable(folder: Path) -> bool:
    """Whether the ONNX file may go into ``folder``: a writable folder outside this package (the demo weights are
    package data: nothing is written into an installed package)."""
    inside_package = folder.resolve().is_relative_to(Path(__file__).resolve().parent)
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) and not inside_package


def cached_onnx(model: Unmix, model_dir: str | os.PathLike | None) -> Path:
    """The ONNX file of ``model``, exported first if no up-to-date one exists.

    Looks in ``model_dir`` (``xumx_slicq_v2.onnx``), else in ``<torch hub>/checkpoints``; exports next to the
    weights when that folder is writable, not inside this package (the demo model) and holds no foreign file of
    that name (files are never overwritten unless they carry our metadata), else into the hub cache.
    """
    import torch

    from .export import ONNX_FILENAME, export_onnx, model_fingerprint

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
