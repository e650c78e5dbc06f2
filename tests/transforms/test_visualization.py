"""The sliCQT plotting command writes the whole-file spectrogram and one PNG per block."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from xumx_slicq_v2.visualization import main


def test_visualization_cli_writes_pngs(tmp_path) -> None:
    t = np.arange(22050 * 2) / 22050
    audio = 0.3 * np.sin(2 * np.pi * (200 * t + 300 * t**2))
    wav = tmp_path / "tone.wav"
    sf.write(wav, audio, 22050)  # mono, 22.05 kHz: resampled to the transform's rate
    out = tmp_path / "plots"
    main(["--input", str(wav), "--out-dir", str(out), "--scale", "mel", "--bins", "24", "--fmin", "60"])
    spectrogram = out / "tone-slicqt.png"
    assert spectrogram.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    blocks = sorted(out.glob("tone-block-*.png"))
    assert len(blocks) > 3
    assert not list(out.glob(".*part*"))  # atomic writes leave no temporaries
