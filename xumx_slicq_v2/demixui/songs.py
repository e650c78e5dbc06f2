"""The songs the user gave and their separation, kept on the server.

A `Song` is the command line's ``--input-file`` (shown to every page) or a file uploaded by one page (shown to that
page only, deleted when the page closes). Pages refer to songs by random ids, never by paths. Each song is
separated once, by an asyncio task that advances `xumx_slicq_v2.separator.separate_stream` one piece at a time in
the separation executor (one worker thread shared by all songs: the event loop never blocks, and two songs take
turns chunk by chunk). The stems are kept in one array per song, so pages that open the song later, seek, switch
listeners or download get the separated samples without separating again. Separation pauses while no page
watches the song and stops for good when the song is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from ..audio import AUDIO_EXTENSIONS, AudioError, load_audio
from ..separator import Separator, separate_stream

log = logging.getLogger(__name__)


class SongError(RuntimeError):
    """A song cannot be used; the message names the song as the user knows it (never a server path)."""


class UploadTooLarge(SongError):
    """An upload is over the size limit."""


def read_song(path: Path, name: str) -> tuple[np.ndarray, int]:
    """Decode ``path`` with the library's loader: ``(audio (channels, samples) float32, sample_rate)``.

    Raises `SongError` naming ``name`` for anything the demixer cannot separate: not audio, an unsupported
    format, no samples, more than two channels, non-finite samples.
    """
    try:
        audio, sample_rate = load_audio(path)
    except AudioError as err:
        reason = str(err).removeprefix(f"{path}: ").replace(str(path), name)  # the user never sees server paths
        raise SongError(f"{name}: not an audio file the demixer can read ({reason})") from None
    if audio.shape[-1] == 0:
        raise SongError(f"{name}: the file holds no samples")
    if audio.shape[0] > 2:
        raise SongError(f"{name}: {audio.shape[0]} channels; the models take mono or stereo (downmix it first)")
    if not np.all(np.isfinite(audio)):
        raise SongError(f"{name}: contains NaN or infinite samples")
    return audio, sample_rate


class Song:
    """One song, its decoded format and its stems as far as they are separated.

    Attributes:
        id: random token the pages use.
        name: what the user called it (the file name), for messages.
        owner: the page session that uploaded it, or ``None`` for the command line's song (every page sees it).
        sample_rate, channels, length: of the decoded song (``None`` until decoded).
        stems: ``(sources, channels, length)`` float32 at the song's rate, valid up to ``separated`` samples.
        error: why the song cannot be separated (shown to the page), or ``None``.
        seconds: wall time the separation has taken so far.
    """

    def __init__(self, song_id: str, name: str, path: Path, owner: str | None, temporary: bool):
        self.id, self.name, self.path, self.owner, self.temporary = song_id, name, path, owner, temporary
        self.sample_rate: int | None = None
        self.channels: int | None = None
        self.length: int | None = None
        self.stems: np.ndarray | None = None
        self.separated = 0
        self.error: str | None = None
        self.seconds = 0.0
        self.task: asyncio.Task | None = None
        self._watchers: set[asyncio.Event] = set()
        self._resume = asyncio.Event()

    @property
    def done(self) -> bool:
        return self.error is not None or (self.length is not None and self.separated >= self.length)

    def watch(self, event: asyncio.Event) -> None:
        """Set ``event`` on every change (decoded, a piece separated, an error); separation runs while watched."""
        self._watchers.add(event)
        self._resume.set()
        event.set()

    def unwatch(self, event: asyncio.Event) -> None:
        self._watchers.discard(event)
        if not self._watchers:
            self._resume.clear()

    def _changed(self) -> None:
        for event in self._watchers:
            event.set()

    async def separate(self, separator: Separator, executor: Executor) -> None:
        """Decode, then separate piece by piece into `stems` (the task that `SongStore.add` starts)."""
        loop = asyncio.get_running_loop()
        try:
            audio, sample_rate = await asyncio.to_thread(read_song, self.path, self.name)
            self.sample_rate, (self.channels, self.length) = sample_rate, audio.shape
            self.stems = np.zeros((len(separator.sources), *audio.shape), np.float32)
            self._changed()
            pieces = separate_stream(audio, sample_rate, separator)
            del audio
            try:
                while True:
                    await self._resume.wait()
                    started = time.perf_counter()
                    piece = await loop.run_in_executor(executor, next, pieces, None)
                    self.seconds += time.perf_counter() - started
                    if piece is None:
                        break
                    start, stems = piece
                    stop = start + next(iter(stems.values())).shape[-1]
                    for index, source in enumerate(separator.sources):
                        self.stems[index, :, start:stop] = stems[source]
                    self.separated = stop
                    self._changed()
            finally:  # after the piece in flight, if any: the executor runs one call at a time
                executor.submit(pieces.close)
            log.info("%s: separated %.1f s of audio in %.1f s", self.name, self.length / sample_rate, self.seconds)
        except SongError as err:
            self.error = str(err)
        except Exception as err:  # the page must hear of any failure, and the server keeps running
            log.exception("%s: separation failed", self.name)
            self.error = f"{self.name}: separation failed ({type(err).__name__}: {err})"
        self._changed()


class SongStore:
    """The songs of this server, by id; uploads live in ``upload_dir`` under random names.

    Args:
        separator: the loaded model.
        executor: where separation steps run (one worker thread).
        upload_dir: a private folder for uploaded files (the server deletes it at exit).
        max_upload_bytes: the upload size limit.
    """

    def __init__(self, separator: Separator, executor: Executor, upload_dir: Path, max_upload_bytes: int):
        self.separator, self.executor = separator, executor
        self.upload_dir, self.max_upload_bytes = upload_dir, max_upload_bytes
        self.songs: dict[str, Song] = {}

    def add(self, path: Path, name: str, owner: str | None = None, temporary: bool = False) -> Song:
        """Register a song and start its separation task (it waits for a watcher before separating)."""
        song = Song(secrets.token_urlsafe(12), name, path, owner, temporary)
        self.songs[song.id] = song
        song.task = asyncio.create_task(song.separate(self.separator, self.executor), name=f"separate {name}")
        return song

    def get(self, song_id: object, session_id: str) -> Song | None:
        """The song ``song_id`` if the page ``session_id`` may open it (its own uploads, the command line's song)."""
        song = self.songs.get(song_id) if isinstance(song_id, str) else None
        return song if song is not None and song.owner in (None, session_id) else None

    def public(self) -> list[Song]:
        return [song for song in self.songs.values() if song.owner is None]

    async def upload(self, chunks: AsyncIterator[bytes], name: str, owner: str) -> Song:
        """Store an upload (streamed, at most ``max_upload_bytes``) and register it as ``owner``'s song.

        The file gets a random name in ``upload_dir`` (the user's name is kept for display only, so no name can
        reach outside the folder); its extension is kept when it is an audio extension, as a decoding hint.
        """
        suffix = Path(name).suffix.lower()
        path = self.upload_dir / f"{secrets.token_hex(16)}{suffix if suffix in AUDIO_EXTENSIONS else '.upload'}"
        size = 0
        try:
            with open(path, "xb") as file:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise UploadTooLarge(
                            f"{name}: larger than the upload limit of {self.max_upload_bytes / 2**20:g} MiB "
                            "(start the mixer with a higher --max-upload-mb)"
                        )
                    file.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return self.add(path, name, owner=owner, temporary=True)

    async def release(self, song: Song) -> None:
        """Stop ``song``'s separation, forget it and delete its uploaded file."""
        self.songs.pop(song.id, None)
        if song.task is not None and not song.task.done():
            song.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await song.task
        if song.length is not None and not song.done:
            log.info("%s: closed; separation stopped at %d of %d samples", song.name, song.separated, song.length)
        song.stems = None
        if song.temporary:
            song.path.unlink(missing_ok=True)

    async def release_owned(self, owner: str) -> None:
        for song in [song for song in self.songs.values() if song.owner == owner]:
            await self.release(song)

    async def close(self) -> None:
        for song in list(self.songs.values()):
            await self.release(song)
