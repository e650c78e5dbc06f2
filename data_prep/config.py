"""Every tunable number of the synthetic music generator and its dataset presets, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The four MUSDB18 targets, in the order the generator renders and returns them.
STEMS = ("bass", "drums", "other", "vocals")

#: Files of one MUSDB18-HQ track folder.
TRACK_FILES = ("mixture", *STEMS)

#: MUSDB18-HQ / CAD1 audio rate (Hz).
SAMPLE_RATE = 44100

#: Version of the generator's output; bumped whenever the same seed would render different audio, so that
#: trees of an older version are never mixed with newer songs.
GENERATOR_VERSION = 2

#: Full scale of 16-bit PCM: ``float = int16 / INT16_SCALE``.
INT16_SCALE = 32768


@dataclass(frozen=True)
class SynthConfig:
    """Ranges a song draws its parameters from, and the mixing rules.

    Ranges are ``(low, high)``; levels in dB, times in seconds, tempo in beats per minute.
    """

    tempo_range: tuple[float, float] = (72.0, 150.0)
    #: Probability that a song uses a triplet (shuffle / 12/8) grid instead of a straight 16th grid.
    triplet_probability: float = 0.2
    #: Delay of the off-beat 16ths of a straight grid, as a fraction of a 16th.
    swing_range: tuple[float, float] = (0.0, 0.3)
    #: Probability that a song's harmony uses seventh chords.
    seventh_probability: float = 0.3
    #: Probability that a stem sits out a verse/chorus (beside the sections that drop it by design).
    dropout_probability: float = 0.12
    #: Room reverb: decay time, and the pre-delay before the reverberant tail.
    rt60_range: tuple[float, float] = (0.3, 1.0)
    predelay_range: tuple[float, float] = (0.005, 0.03)
    #: Reverb send per stem (dB of the wet signal relative to the dry stem at equal RMS).
    reverb_send_db: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "bass": (-36.0, -26.0),
            "drums": (-24.0, -14.0),
            "other": (-20.0, -10.0),
            "vocals": (-20.0, -11.0),
        }
    )
    #: Stem balance: RMS of each stem over its active passages relative to the mixture target (dB).
    balance_db: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "bass": (-5.0, -1.0),
            "drums": (-5.0, -1.0),
            "other": (-7.0, -2.0),
            "vocals": (-7.0, -3.0),
        }
    )
    #: Mixture RMS the per-song gain aims at (dBFS), lowered where the peak ceiling requires it.
    mixture_rms_range: tuple[float, float] = (-20.0, -15.0)
    #: Highest sample magnitude of the mixture and of every stem (dBFS).
    peak_ceiling_db: float = -1.0
    #: A stem that stops at a section boundary fades out over this time (raised cosine).
    gate_release: float = 0.25
    #: A stem that starts at a section boundary fades in over this time, ending at the boundary.
    gate_attack: float = 0.01
    #: Fade at the end of the song (all stems alike, so the mixture stays their sum).
    fade_out: float = 0.5


SYNTH_CONFIG = SynthConfig()


@dataclass(frozen=True)
class DatasetPreset:
    """Size of a generated CAD1-shaped dataset."""

    n_train: int
    n_valid: int
    n_test: int
    seconds: float
    listeners_per_split: int
    seed: int


#: The demo dataset that the main job embeds: 3 validation and 2 test songs of 10 s, 3 listeners per split (no
#: loss, moderate, severe). Short on purpose: HAAQI costs ~0.8 CPU-s per second of audio and call (10 calls a pair).
DEMO_PRESET = DatasetPreset(n_train=0, n_valid=3, n_test=2, seconds=10.0, listeners_per_split=3, seed=2023)
