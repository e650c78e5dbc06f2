"""One `Session` per open page (websocket): which song it plays, which listener it hears as, what it was sent.

Messages from the page (JSON text): ``{"type": "open", "song": ID}``; ``{"type": "listener"}`` (none),
``{"type": "listener", "id": LISTENER}`` (from the listeners file) or ``{"type": "listener", "left": {"levels":
[...], "frequencies": [...]}, "right": {...}}`` (typed, dB HL at Hz).

Messages to the page: JSON text ``hello``, ``song``, ``progress``, ``listener``, ``error`` (see `Session`), and
binary audio frames: a 24-byte little-endian header ``kind (uint32: 0 stems, 1 heard), generation (uint32),
start (float64, sample), samples n (uint32), channels c (uint32)`` then float32 samples ``(sources, c, n)``.
Stem frames carry the separated stems; heard frames carry the stems through the chosen listener's NAL-R, one
channel per ear (ear ``i`` filters channel ``i``, mono songs feed both ears), for listener choice ``generation``.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from starlette.websockets import WebSocket

from ..hearing import NALR_FREQUENCIES, Audiogram, AudiogramError, FirStream, Listener, nalr_fir, nalr_gains_db
from .songs import Song, SongStore

#: Samples per audio frame (about 1.5 s at 44.1 kHz).
FRAME_SAMPLES = 1 << 16
#: Frame header: kind, generation, start sample, samples, channels.
FRAME_HEADER = struct.Struct("<IIdII")
STEMS_FRAME, HEARD_FRAME = 0, 1


def audio_frame(kind: int, generation: int, start: int, samples: np.ndarray) -> bytes:
    """One binary frame for ``samples`` ``(sources, channels, n)`` starting at sample ``start``."""
    _sources, channels, count = samples.shape
    return (
        FRAME_HEADER.pack(kind, generation, float(start), count, channels)
        + np.ascontiguousarray(samples, dtype="<f4").tobytes()
    )


def parse_audiogram(value: object, ear: str) -> Audiogram:
    """A typed audiogram ``{"levels": [...], "frequencies": [...]}`` (dB HL, Hz) or `AudiogramError`."""
    if not isinstance(value, Mapping):
        raise AudiogramError(f"{ear} ear: expected levels and frequencies")
    levels, frequencies = value.get("levels"), value.get("frequencies")
    if not isinstance(levels, list) or not isinstance(frequencies, list):
        raise AudiogramError(f"{ear} ear: expected lists of levels (dB HL) and frequencies (Hz)")
    try:
        return Audiogram(tuple(float(x) for x in levels), tuple(float(x) for x in frequencies))
    except (TypeError, ValueError) as err:
        raise AudiogramError(f"{ear} ear: {err}") from None


def describe_listener(listener: Listener) -> dict[str, Any]:
    """The listener for the page: audiograms and the NAL-R gains (dB) at `NALR_FREQUENCIES` per ear."""
    return {
        "id": listener.id,
        **{
            ear: {**audiogram.to_json(), "nalr_gains_db": nalr_gains_db(audiogram.at(NALR_FREQUENCIES)).tolist()}
            for ear, audiogram in zip(("left", "right"), listener.ears)
        },
        "nalr_frequencies": NALR_FREQUENCIES.tolist(),
    }


class Session:
    """The server side of one page.

    The page's messages change the state (`handle`); `pump` sends what is due: first queued JSON messages, then
    heard frames up to the stems already sent, then stem frames up to what is separated, each followed by a
    ``progress`` message. It runs until the page closes; nothing is sent twice except after a new song or a new
    listener (a new ``generation``), when the heard stems are filtered again from the first sample.
    """

    def __init__(
        self, session_id: str, websocket: WebSocket, store: SongStore, listeners: Mapping[str, Listener], nfir: int
    ):
        self.id, self.websocket, self.store, self.listeners, self.nfir = session_id, websocket, store, listeners, nfir
        self.song: Song | None = None
        self.listener: Listener | None = None
        self.generation = 0
        self.outbox: list[dict[str, Any]] = []
        self.wake = asyncio.Event()
        self._reset()

    def _reset(self) -> None:
        """Nothing of the song sent yet (also the heard stems)."""
        self.announced = self.error_sent = False
        self.stems_sent = self.heard_sent = self.progress_sent = 0
        self.filters: list[FirStream] | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.append(message)
        self.wake.set()

    def hello(self, model: str, listeners_file: str | None, max_upload_bytes: int) -> None:
        self.send(
            {
                "type": "hello",
                "session": self.id,
                "model": model,
                "sources": list(self.store.separator.sources),
                "songs": [{"id": song.id, "name": song.name} for song in self.store.public()],
                "listeners": [describe_listener(listener) for listener in self.listeners.values()],
                "listeners_file": listeners_file,
                "max_upload_bytes": max_upload_bytes,
                "nfir": self.nfir,
            }
        )

    async def handle(self, message: object) -> None:
        """Apply one message of the page."""
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "open":
            song = self.store.get(message.get("song"), self.id)
            if song is None:
                self.send({"type": "error", "message": "no such song (it may have been closed); open a file"})
                return
            await self.open(song)
        elif kind == "listener":
            try:
                self.listener = self._listener(message)
            except AudiogramError as err:
                self.send({"type": "error", "message": f"listener: {err}"})
                return
            self._new_generation()
        else:
            self.send({"type": "error", "message": f"unknown message {str(message)[:80]!r}"})

    def _listener(self, message: dict) -> Listener | None:
        if "left" in message or "right" in message:
            left, right = (parse_audiogram(message.get(ear), ear) for ear in ("left", "right"))
            return Listener(id="typed audiogram", left=left, right=right)
        listener_id = message.get("id")
        if listener_id is None:
            return None
        if not isinstance(listener_id, str) or listener_id not in self.listeners:
            raise AudiogramError(f"no listener {listener_id!r} in the listeners file")
        return self.listeners[listener_id]

    async def open(self, song: Song) -> None:
        """Play ``song`` from now on; the previous song stops being watched (and is released if uploaded)."""
        previous, self.song = self.song, song
        if previous is not None and previous is not song:
            previous.unwatch(self.wake)
            if previous.owner == self.id:
                await self.store.release(previous)
        self._reset()
        song.watch(self.wake)
        self._new_generation()

    def _new_generation(self) -> None:
        """A new listener choice (or song): the heard stems start again from the first sample."""
        self.generation += 1
        self.heard_sent, self.filters = 0, None
        listener = None if self.listener is None else describe_listener(self.listener)
        self.send({"type": "listener", "generation": self.generation, "listener": listener})

    async def close(self) -> None:
        if self.song is not None:
            self.song.unwatch(self.wake)
        await self.store.release_owned(self.id)

    async def pump(self) -> None:
        """Send what is due whenever something changed, until cancelled."""
        while True:
            self.wake.clear()
            await self._send_due()
            await self.wake.wait()

    async def _send_due(self) -> None:
        while self.outbox:
            await self.websocket.send_json(self.outbox.pop(0))
        song, generation = self.song, self.generation
        if song is None:
            return
        if song.error is not None and not self.error_sent:
            self.error_sent = True
            await self.websocket.send_json({"type": "error", "message": song.error})
        if song.stems is None:
            return
        if not self.announced:
            self.announced = True
            await self.websocket.send_json(
                {
                    "type": "song",
                    "song": song.id,
                    "name": song.name,
                    "sample_rate": song.sample_rate,
                    "channels": song.channels,
                    "length": song.length,
                }
            )
        while song is self.song and generation == self.generation and song.stems is not None and not self.outbox:
            if self.listener is not None and self.heard_sent < self.stems_sent:
                await self._send_heard(song, generation)
            elif self.stems_sent < song.separated:
                stop = min(song.separated, self.stems_sent + FRAME_SAMPLES)
                frame = audio_frame(STEMS_FRAME, 0, self.stems_sent, song.stems[..., self.stems_sent : stop])
                self.stems_sent = stop
                await self.websocket.send_bytes(frame)
            else:
                break
            if song.separated > self.progress_sent:
                self.progress_sent = song.separated
                await self.websocket.send_json(
                    {"type": "progress", "separated": song.separated, "length": song.length, "seconds": song.seconds}
                )

    async def _send_heard(self, song: Song, generation: int) -> None:
        """Filter and send the next heard frame (NAL-R per ear, streaming: the same samples as the whole song)."""
        if self.filters is None:
            try:
                self.filters = [FirStream(nalr_fir(ear, self.nfir, song.sample_rate)) for ear in self.listener.ears]
            except ValueError as err:
                self.listener = None
                self._new_generation()
                self.send({"type": "error", "message": f"listener: {err}"})
                return
        start, filters = self.heard_sent, self.filters
        stop = min(self.stems_sent, start + FRAME_SAMPLES)
        stems = song.stems[..., start:stop]
        heard = await asyncio.to_thread(
            lambda: np.stack(
                [fir.process(stems[:, min(ear, song.channels - 1)]) for ear, fir in enumerate(filters)], axis=1
            )
        )
        if song is self.song and generation == self.generation:
            self.heard_sent = stop
            await self.websocket.send_bytes(audio_frame(HEARD_FRAME, generation, start, heard))


async def run_session(session: Session, receive: Any) -> None:
    """Run ``session``'s pump beside ``receive`` (the page's message loop) until the page closes."""
    pump = asyncio.create_task(session.pump(), name=f"pump {session.id}")
    try:
        await receive()
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        await session.close()
