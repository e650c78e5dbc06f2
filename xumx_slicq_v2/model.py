"""The xumx-sliCQ-V2 network: one convolutional denoising autoencoder (CDAE) per sliCQT block and target.

Layout: a block of the transform is ``(batch, channels, freq, slices, coefs)`` complex; the network flattens
``(slices, coefs)`` into one time axis of ``slices * coefs`` frames, predicts one sigmoid mask per target and
applies it to the mixture magnitude, then recovers phase with Wiener-EM (offline) or the mixture phase
(realtime, and offline models without Wiener-EM iterations). Outputs are batch-first:
``(batch, targets, channels, freq, slices, coefs)``, targets in the order of `SOURCES`.

The parameters live in per-target ``nn.Sequential`` modules so that the state_dict has exactly the keys, order
and shapes of the reference checkpoints (``sliced_umx.<block>.cdaes.<target>.<layer>.<name>``); the forward
pass runs the four targets of a block as one grouped convolution (BatchNorm folded into the convolutions in
eval mode). A few operations take another, equivalent form while exporting to ONNX (`mask_mixture`,
`stride_one_conv_transpose`, `half_overlap_conv_transpose`): the forms fastest in torch are slow in ONNX
Runtime and the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xumx_slicq_v2.config import NB_CHANNELS, SOURCES, ModelConfig
from xumx_slicq_v2.wiener import wiener_real


def frequency_kernel(freq_bins: int) -> int:
    """Height of the CDAE kernels for a block of ``freq_bins`` rows: 1 below 10 rows, 3 below 20, else 5."""
    if freq_bins < 10:
        return 1
    if freq_bins < 20:
        return 3
    return 5


class CausalConv2d(nn.Conv2d):
    """Conv2d whose output frame t sees only input frames <= t: left-pads ``kernel width - 1`` zeros in time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.kernel_size[1] - 1, 0)))


def make_cdae(freq_bins: int, coefs: int, config: ModelConfig) -> nn.Sequential:
    """One target's CDAE for a block of ``freq_bins`` x ``coefs``: input ``(batch, 2, freq, frames)`` of
    normalised magnitudes, output the sigmoid mask ``(batch, 2, >= freq, >= frames)`` (crop to the input).

    The first layer's kernel spans one slice (``coefs`` frames) with a hop of half a slice.
    """
    height = frequency_kernel(freq_bins)
    hop = coefs // 2
    hidden_1, hidden_2, width_2 = config.hidden_size_1, config.hidden_size_2, config.time_filter_2
    first = CausalConv2d if config.realtime else nn.Conv2d
    return nn.Sequential(
        first(NB_CHANNELS, hidden_1, (height, coefs), stride=(1, hop), bias=False),
        nn.BatchNorm2d(hidden_1),
        nn.ReLU(),
        nn.Conv2d(hidden_1, hidden_2, (height, width_2), bias=False),
        nn.BatchNorm2d(hidden_2),
        nn.ReLU(),
        nn.ConvTranspose2d(hidden_2, hidden_1, (height, width_2), bias=False),
        nn.BatchNorm2d(hidden_1),
        nn.ReLU(),
        nn.ConvTranspose2d(hidden_1, NB_CHANNELS, (height, coefs), stride=(1, hop), bias=True),
        nn.Sigmoid(),
    )


#: Indices of the weight layers and of the BatchNorm following them in a `make_cdae` Sequential.
_CONV_LAYERS = (0, 3, 6, 9)
_NORM_AFTER = {0: 1, 3: 4, 6: 7}


class SlicedCDAE(nn.Module):
    """The network of one sliCQT block: input normalisation and one CDAE per target.

    ``input_mean`` holds minus the mean and ``input_scale`` one over the standard deviation of the mixture
    magnitude per frequency row (trainable; identity until training statistics are set).
    """

    def __init__(self, freq_bins: int, coefs: int, config: ModelConfig) -> None:
        super().__init__()
        if coefs % 2:
            raise ValueError(f"a block needs an even number of coefficients per slice, got {coefs}")
        self.freq_bins = freq_bins
        self.coefs = coefs
        self.config = config
        self.input_mean = nn.Parameter(torch.zeros(freq_bins))
        self.input_scale = nn.Parameter(torch.ones(freq_bins))
        self.cdaes = nn.ModuleList(make_cdae(freq_bins, coefs, config) for _ in SOURCES)
        # the second layer needs time_filter_2 frames out of the first (2 per slice, 1 fewer offline)
        self.min_slices = max(1, math.ceil((config.time_filter_2 + (0 if config.realtime else 1)) / 2))
        self._grouped_cache: tuple[tuple, dict] | None = None

    def forward(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Separate one block.

        Args:
            mix: ``(batch, 2, freq, slices, coefs, 2)`` mixture coefficients, real/imag on the last axis.

        Returns:
            ``(estimates, masks)``: ``(batch, targets, 2, freq, slices, coefs, 2)`` real/imag and
            ``(batch, targets, 2, freq, slices, coefs)`` sigmoid masks.
        """
        batch, channels, freq, slices, coefs, _ = mix.shape
        if (channels, freq, coefs) != (NB_CHANNELS, self.freq_bins, self.coefs):
            raise ValueError(
                f"block of shape {tuple(mix.shape)} does not fit a network built for "
                f"(batch, {NB_CHANNELS}, {self.freq_bins}, slices, {self.coefs}, 2)"
            )
        magnitude = (mix[..., 0].square() + mix[..., 1].square()).sqrt().reshape(batch, channels, freq, slices * coefs)
        normalised = (magnitude + self.input_mean[:, None]) * self.input_scale[:, None]
        shape = (batch, len(SOURCES), channels, freq, slices, coefs)
        masks = self.masks(normalised).reshape(shape)
        if self.config.realtime or self.config.wiener_iterations == 0:
            # mixture phase: mask * |X| * exp(j angle X) == mask * X (also for X == 0); computed in the output's
            # shape, which spares ONNX Runtime a copy
            return mask_mixture(masks, mix.unsqueeze(1)), masks
        target_magnitude = masks * magnitude.detach().reshape(batch, 1, channels, freq, slices, coefs)
        return wiener_block(target_magnitude, mix, self.config), masks

    def masks(self, normalised: torch.Tensor) -> torch.Tensor:
        """All targets' masks from the normalised magnitude ``(batch, 2, freq, frames)``:
        ``(batch, targets * 2, freq, frames)`` (target-major channels)."""
        freq, frames = normalised.shape[-2:]
        if frames < self.min_slices * self.coefs:
            raise ValueError(
                f"the network needs at least {self.min_slices} slices per block, got {frames // self.coefs}"
            )
        groups = len(SOURCES)
        layers = self._grouped_layers()
        x = F.pad(normalised, (self.coefs - 1, 0)) if self.config.realtime else normalised
        x = x.contiguous(memory_format=torch.channels_last)  # the fastest layout for oneDNN convolutions
        x = F.conv2d(x, *layers[0], stride=(1, self.coefs // 2))
        x = self._norm_relu(x, 0)
        x = F.conv2d(x, *layers[3], groups=groups)
        x = self._norm_relu(x, 3)
        x = stride_one_conv_transpose(x, *layers[6], groups=groups)
        x = self._norm_relu(x, 6)
        x = half_overlap_conv_transpose(x, *layers[9], groups=groups)
        return torch.sigmoid(x[..., :freq, :frames])

    def _grouped_layers(self) -> dict[int, tuple[torch.Tensor, torch.Tensor | None]]:
        """Per layer index, the concatenated (weight, bias) of the 4 targets for a grouped convolution.

        In eval mode the BatchNorm after layers 0, 3 and 6 is folded in (scaled weights plus a bias). Results
        without autograd history are reused until a parameter or buffer changes (storage or version).
        """
        key = (
            self.training,
            torch.is_inference_mode_enabled(),
            tuple((tensor.data_ptr(), tensor._version) for tensor in self.cdaes.state_dict(keep_vars=True).values()),
        )
        if self._grouped_cache is not None and self._grouped_cache[0] == key:
            return self._grouped_cache[1]
        grouped = self._group_layers()
        if not any(tensor.requires_grad for pair in grouped.values() for tensor in pair if tensor is not None):
            self._grouped_cache = (key, grouped)
        return grouped

    def _group_layers(self) -> dict[int, tuple[torch.Tensor, torch.Tensor | None]]:
        grouped = {}
        for index in _CONV_LAYERS:
            weights, biases = [], []
            for cdae in self.cdaes:
                conv = cdae[index]
                weight, bias = conv.weight, conv.bias
                if not self.training and index in _NORM_AFTER:
                    norm = cdae[_NORM_AFTER[index]]
                    scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
                    # out channels: axis 0 of a Conv2d weight, axis 1 of a ConvTranspose2d weight
                    out_axis = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
                    shape = [1, 1, 1, 1]
                    shape[out_axis] = -1
                    weight = weight * scale.reshape(shape)
                    bias = norm.bias - norm.running_mean * scale
                weights.append(weight)
                biases.append(bias)
            weight = torch.cat(weights)
            if index in _NORM_AFTER:
                weight = weight.contiguous(memory_format=torch.channels_last)
            grouped[index] = (weight, None if biases[0] is None else torch.cat(biases))
        return grouped

    def _norm_relu(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """ReLU after layer ``index``, preceded in train mode by each target's BatchNorm (running statistics
        updated per target); in eval mode the BatchNorm is already folded into the layer."""
        if self.training:
            chunks = x.chunk(len(SOURCES), dim=1)
            x = torch.cat([cdae[_NORM_AFTER[index]](chunk) for cdae, chunk in zip(self.cdaes, chunks)], dim=1)
            return F.relu(x)
        return F.relu_(x)


def wiener_block(target_magnitude: torch.Tensor, mix: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Wiener-EM of one sliCQT block with ``config``'s iterations, window and eps (`wiener_real` over the
    block's frames ``slices * coefs``); the torch network and the onnx backends both refine through this.

    Args:
        target_magnitude: ``(batch, targets, 2, freq, slices, coefs)`` non-negative magnitude estimates.
        mix: ``(batch, 2, freq, slices, coefs, 2)`` mixture coefficients, real/imag on the last axis.

    Returns:
        ``(batch, targets, 2, freq, slices, coefs, 2)`` complex estimates, real/imag on the last axis.
    """
    batch, targets, channels, freq, slices, coefs = target_magnitude.shape
    estimates = wiener_real(
        target_magnitude.reshape(batch, targets, channels, freq, slices * coefs),
        mix.reshape(batch, channels, freq, slices * coefs, 2),
        iterations=config.wiener_iterations,
        window=config.wiener_window,
        eps=config.wiener_eps,
    )
    return estimates.reshape(batch, targets, channels, freq, slices, coefs, 2)


def mask_mixture(masks: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Masks times complex mixture: ``(..., frames)`` real masks and ``(..., frames, 2)`` real/imag mixture
    (broadcast against each other) -> ``(..., frames, 2)``.

    torch broadcasts the masks over the real/imag axis; while exporting to ONNX the two parts are multiplied
    apart and stacked (the same values), as ONNX Runtime is slow at broadcasting over a last axis of 2 (and
    torch is slower at the stacked form).
    """
    if torch.onnx.is_in_onnx_export():
        real, imag = mix.unbind(-1)
        return torch.stack((masks * real, masks * imag), dim=-1)
    return masks.unsqueeze(-1) * mix


def stride_one_conv_transpose(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int
) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, groups=groups)``; while exporting to ONNX the same as a plain
    convolution with the flipped kernel over the zero-padded input (ONNX Runtime's Conv is much faster than its
    ConvTranspose).

    Args:
        x: ``(batch, groups * in_channels, rows, frames)``.
        weight: ``(groups * in_channels, out_channels, height, width)`` (ConvTranspose2d layout).

    Returns:
        ``(batch, groups * out_channels, rows + height - 1, frames + width - 1)``.
    """
    if not torch.onnx.is_in_onnx_export():
        return F.conv_transpose2d(x, weight, bias, groups=groups)
    channels, out_channels, height, width = weight.shape
    kernel = weight.reshape(groups, channels // groups, out_channels, height, width).transpose(1, 2)
    kernel = kernel.reshape(groups * out_channels, channels // groups, height, width).flip(2, 3)
    return F.conv2d(x, kernel, bias, padding=(height - 1, width - 1), groups=groups)


def half_overlap_conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride=(1, width // 2), groups=groups)`` for an even kernel
    ``width``, computed as one batched matrix product and an overlap-add of half-kernels (much faster on CPU
    than the generic strided transposed convolution).

    Args:
        x: ``(batch, groups * in_channels, rows, frames)``.
        weight: ``(groups * in_channels, out_channels, height, width)`` (ConvTranspose2d layout).
        bias: ``(groups * out_channels,)``.

    Returns:
        ``(batch, groups * out_channels, rows + height - 1, (frames + 1) * width // 2)``.

    While exporting to ONNX this is the plain transposed convolution: one ConvTranspose node, which ONNX Runtime
    runs faster than the MatMul + ScatterND that the matrix form exports to.
    """
    _, out_channels, height, width = weight.shape
    hop = width // 2
    if torch.onnx.is_in_onnx_export():
        return F.conv_transpose2d(x, weight, bias, stride=(1, hop), groups=groups)
    batch, channels, rows, frames = x.shape
    in_channels = channels // groups
    # (batch, groups, rows * frames, in) @ (groups, in, out * height * width): every input position's kernel
    columns = x.permute(0, 2, 3, 1).reshape(batch, rows * frames, groups, in_channels).transpose(1, 2)
    columns = columns @ weight.reshape(groups, in_channels, out_channels * height * width)
    # -> (batch, groups, out, height, half, rows, frames, hop)
    columns = columns.reshape(batch, groups, rows, frames, out_channels, height, 2, hop)
    columns = columns.permute(0, 1, 4, 5, 6, 2, 3, 7)
    output = bias.reshape(1, groups, out_channels, 1, 1, 1)
    output = output.expand(batch, groups, out_channels, rows + height - 1, frames + 1, hop).clone()
    for row in range(height):
        for half in range(2):
            output[:, :, :, row : row + rows, half : half + frames].add_(columns[:, :, :, row, half])
    return output.reshape(batch, groups * out_channels, rows + height - 1, (frames + 1) * hop)


class Unmix(nn.Module):
    """The whole network: one `SlicedCDAE` per sliCQT block (attribute ``sliced_umx``)."""

    def __init__(self, config: ModelConfig, block_shapes: Sequence[tuple[int, int]]) -> None:
        """``block_shapes``: ``(freq_bins, coefs)`` per block, as `SliCQT.block_shapes` gives them."""
        super().__init__()
        self.config = config
        self.block_shapes = [(int(freq), int(coefs)) for freq, coefs in block_shapes]
        self.sliced_umx = nn.ModuleList(SlicedCDAE(freq, coefs, config) for freq, coefs in self.block_shapes)

    @property
    def sources(self) -> tuple[str, ...]:
        return SOURCES

    def forward(
        self, blocks: Sequence[torch.Tensor], return_masks: bool = False
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Separate complex sliCQT blocks ``(batch, 2, freq, slices, coefs)``.

        Returns:
            per block the complex estimates ``(batch, targets, 2, freq, slices, coefs)``; with
            ``return_masks`` also the masks ``(batch, targets, 2, freq, slices, coefs)``.
        """
        estimates, masks = self._run([torch.view_as_real(block) for block in blocks])
        estimates = [torch.view_as_complex(_unit_last_stride(estimate)) for estimate in estimates]
        return (estimates, masks) if return_masks else estimates

    def forward_real(
        self, blocks: Sequence[torch.Tensor], return_masks: bool = False
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`forward` on real/imag blocks ``(batch, 2, freq, slices, coefs, 2)``, returning estimates
        ``(batch, targets, 2, freq, slices, coefs, 2)`` (no complex ops: the ONNX entry point)."""
        estimates, masks = self._run(blocks)
        return (estimates, masks) if return_masks else estimates

    def _run(self, blocks: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if len(blocks) != len(self.sliced_umx):
            raise ValueError(f"expected {len(self.sliced_umx)} sliCQT blocks, got {len(blocks)}")
        outputs = [network(block) for network, block in zip(self.sliced_umx, blocks)]
        return [estimate for estimate, _ in outputs], [mask for _, mask in outputs]


class PositionalUnmix(nn.Module):
    """`Unmix.forward_real` with one positional real/imag tensor per block in and a tuple out (the signature
    that the ONNX and TorchScript exporters trace)."""

    def __init__(self, model: Unmix) -> None:
        super().__init__()
        self.model = model

    def forward(self, *blocks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.forward_real(list(blocks)))


def _unit_last_stride(x: torch.Tensor) -> torch.Tensor:
    """``x`` if its last axis is contiguous (as `torch.view_as_complex` needs), else a contiguous copy."""
    return x if x.stride(-1) == 1 else x.contiguous()


def build_unmix(config: ModelConfig) -> Unmix:
    """`Unmix` for ``config``, with block shapes from the config's sliCQT."""
    from xumx_slicq_v2.transforms import SliCQT

    return Unmix(config, SliCQT(**config.transform_kwargs()).block_shapes)
