"""The web mixer's server without a browser: websocket pages, uploads, limits, what is served and what is not."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from xumx_slicq_v2 import checkpoint
from xumx_slicq_v2.audio import load_audio
from xumx_slicq_v2.demixui.cli import default_listeners_file, default_model
from xumx_slicq_v2.demixui.sessions import FRAME_HEADER, HEARD_FRAME, STEMS_FRAME
from xumx_slicq_v2.demixui.songs import SongStore, UploadTooLarge
from xumx_slicq_v2.hearing import Audiogram, apply_fir, nalr_fir, read_listeners
from xumx_slicq_v2.separator import separate

from .conftest import MAX_UPLOAD_BYTES

REPO = Path(__file__).resolve().parents[2]


class Page:
    """A websocket client speaking the page's protocol."""

    def __init__(self, ws_url: str, **kwargs):
        self.ws: ClientConnection = connect(ws_url, max_size=None, **kwargs).__enter__()  # closed by `close`
        self.hello = self.next_message("hello")
        self.session = self.hello["session"]
        self.stems: np.ndarray | None = None
        self.heard: np.ndarray | None = None
        self.song: dict | None = None
        self.generation = 0
        self.errors: list[str] = []

    def send(self, **message) -> None:
        self.ws.send(json.dumps(message))

    def receive(self, timeout: float = 60) -> dict | None:
        """Handle the next message; returns it if it is JSON (frames are stored)."""
        message = self.ws.recv(timeout=timeout)
        if isinstance(message, str):
            decoded = json.loads(message)
            if decoded["type"] == "song":
                self.song = decoded
                self.stems = np.full((4, decoded["channels"], decoded["length"]), np.nan, np.float32)
                self.heard = np.full((4, 2, decoded["length"]), np.nan, np.float32)
            elif decoded["type"] == "listener":
                self.generation = decoded["generation"]
            elif decoded["type"] == "error":
                self.errors.append(decoded["message"])
            return decoded
        kind, generation, start, count, channels = FRAME_HEADER.unpack_from(message)
        samples = np.frombuffer(message, "<f4", offset=FRAME_HEADER.size).reshape(4, channels, count)
        start = int(start)
        if kind == STEMS_FRAME:
            self.stems[..., start : start + count] = samples
        elif kind == HEARD_FRAME and generation == self.generation:
            self.heard[..., start : start + count] = samples
        return None

    def next_message(self, kind: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(max(0.1, deadline - time.monotonic()))
            if message is not None and message["type"] == kind:
                return message

    def until(self, condition, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            self.receive(max(0.1, deadline - time.monotonic()))

    def complete(self, heard: bool = False) -> bool:
        arrays = (self.stems, self.heard) if heard else (self.stems,)
        return self.song is not None and all(not np.isnan(array).any() for array in arrays)

    def close(self) -> None:
        self.ws.close()


def upload(server, path: Path, session: str, headers: dict | None = None, body: bytes | None = None):
    """POST a file; returns ``(status, decoded JSON)``."""
    data = path.read_bytes() if body is None else body
    request = urllib.request.Request(
        f"{server.url}api/upload?session={urllib.parse.quote(session)}",
        data=data,
        method="POST",
        headers={"X-File-Name": urllib.parse.quote(path.name), **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_stems_streamed_to_two_pages_equal_separate(server, songs, separator):
    """Two pages at once get the command line's song; the frames tile it with the samples of `separate`."""
    first, second = Page(server.ws_url), Page(server.ws_url)
    try:
        assert first.session != second.session
        song = first.hello["songs"][0]
        assert song["name"] == songs["short"].name and second.hello["songs"] == first.hello["songs"]
        assert first.hello["sources"] == ["bass", "vocals", "other", "drums"]
        assert [listener["id"] for listener in first.hello["listeners"]] == ["L0001", "L0002"]
        for page in (first, second):
            page.send(type="open", song=song["id"])
        while not (first.complete() and second.complete()):
            for page in (first, second):
                if not page.complete():
                    page.receive()
        audio, rate = load_audio(songs["short"])
        expected = separate(audio, rate, separator=separator)
        assert first.song["length"] == audio.shape[-1] and first.song["sample_rate"] == rate
        for index, source in enumerate(separator.sources):
            np.testing.assert_array_equal(first.stems[index], expected[source])
            np.testing.assert_array_equal(second.stems[index], expected[source])
        assert not first.errors and not second.errors
    finally:
        first.close()
        second.close()


def test_listener_frames_are_nalr_of_the_stems(server, listeners_file):
    """Heard frames: each ear's NAL-R over its channel, the first samples of the full convolution (the delay kept)."""
    page = Page(server.ws_url)
    try:
        page.send(type="open", song=page.hello["songs"][0]["id"])
        page.send(type="listener", id="L0002")
        while page.next_message("listener")["listener"] is None:
            pass
        page.until(lambda: page.complete(heard=True))
        listener = read_listeners(listeners_file)["L0002"]
        length = page.song["length"]
        for ear, audiogram in enumerate(listener.ears):
            fir = nalr_fir(audiogram, 220, 44100)
            for index in range(4):
                expected = apply_fir(fir, page.stems[index, ear])[:length]
                np.testing.assert_allclose(page.heard[index, ear], expected, rtol=0, atol=1e-6)
        # a typed audiogram replaces it; a malformed one is refused with a message, the listener kept
        page.send(type="listener", left={"levels": [10, 20], "frequencies": [500, 250]}, right={})
        page.next_message("error")
        assert "ascending" in page.errors[-1]
        typed = {"levels": [50, 50, 60, 70], "frequencies": [250, 1000, 2000, 4000]}
        page.send(type="listener", left=typed, right=typed)
        message = page.next_message("listener")
        assert message["listener"]["id"] == "typed audiogram" and message["generation"] == page.generation
        page.heard[:] = np.nan
        page.until(lambda: page.complete(heard=True))
        fir = nalr_fir(Audiogram(tuple(typed["levels"]), tuple(typed["frequencies"])))
        np.testing.assert_allclose(page.heard[1, 0], apply_fir(fir, page.stems[1, 0])[:length], rtol=0, atol=1e-6)
    finally:
        page.close()


def test_mono_song_at_another_rate(server, listeners_file, tmp_path):
    """A mono 22.05 kHz Ogg Vorbis upload: stems at its rate and channel count; both ears hear its one channel."""
    path = tmp_path / "mono.ogg"
    t = np.arange(3 * 22050) / 22050
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)), 22050, format="OGG")
    page = Page(server.ws_url)
    try:
        status, result = upload(server, path, page.session)
        assert status == 200
        page.send(type="open", song=result["song"])
        page.send(type="listener", id="L0001")
        page.until(lambda: page.complete(heard=True))
        assert (page.song["channels"], page.song["sample_rate"]) == (1, 22050)
        assert page.song["length"] == sf.info(path).frames
        listener = read_listeners(listeners_file)["L0001"]
        for ear, audiogram in enumerate(listener.ears):
            expected = apply_fir(nalr_fir(audiogram, 220, 22050), page.stems[2, 0])[: page.song["length"]]
            np.testing.assert_allclose(page.heard[2, ear], expected, rtol=0, atol=1e-6)
        assert not page.errors
    finally:
        page.close()


def test_uploads_are_private_and_released_when_the_page_closes(server, songs):
    owner, other = Page(server.ws_url), Page(server.ws_url)
    try:
        status, result = upload(server, songs["long"], owner.session)
        assert status == 200 and result["name"] == songs["long"].name
        store = server.app.state.store
        song = store.songs[result["song"]]
        assert song.path.parent == store.upload_dir and song.path.suffix == ".flac"
        other.send(type="open", song=result["song"])
        assert "no such song" in other.next_message("error")["message"]
        owner.send(type="open", song=result["song"])
        owner.next_message("progress")  # the first piece is separated and sent
    finally:
        owner.close()
    deadline = time.monotonic() + 30
    while result["song"] in store.songs or not song.task.done():
        assert time.monotonic() < deadline, "closing the page did not stop its song's separation"
        time.sleep(0.05)
    assert song.task.cancelled() and not song.path.exists()
    assert song.separated < song.length  # stopped before the end: the page was closed
    other.close()


def test_bad_uploads_and_requests_are_refused(server, songs, tmp_path):
    page = Page(server.ws_url)
    try:
        # unreadable audio: a message that names the file, not a server path; the server keeps serving
        status, result = upload(server, songs["corrupt"], page.session)
        assert status == 200
        page.send(type="open", song=result["song"])
        message = page.next_message("error")["message"]
        assert message.startswith("broken.mp3: not an audio file")
        assert str(server.app.state.store.upload_dir) not in message
        # too large by its declared length: refused before reading the body
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.putrequest("POST", f"/api/upload?session={page.session}")
        connection.putheader("Content-Length", str(MAX_UPLOAD_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and "upload limit" in json.loads(response.read())["error"]
        connection.close()
        # a name is only a label: it never reaches outside the upload folder
        status, result = upload(server, songs["short"], page.session, headers={"X-File-Name": "..%2F..%2Fevil.wav"})
        assert status == 200 and result["name"] == "evil.wav"
        assert server.app.state.store.songs[result["song"]].path.parent == server.app.state.store.upload_dir
        # no session, or another site's page: the client, still sending a large body, reads the refusal
        large = bytes(MAX_UPLOAD_BYTES)
        status, result = upload(server, songs["short"], "not-a-session", body=large)
        assert status == 403 and "no such page session" in result["error"]
        evil = {"Origin": "http://evil.example"}
        assert upload(server, songs["short"], page.session, headers=evil, body=large)[0] == 403
        with pytest.raises(InvalidStatus):
            Page(server.ws_url, origin="http://evil.example")
        # songs are ids, never paths
        page.send(type="listener", id=["L0001"])
        assert "no listener" in page.next_message("error")["message"]
        for song_id in ("../../../../etc/passwd", str(songs["short"]), None, 3, ["x"]):
            page.send(type="open", song=song_id)
            assert "no such song" in page.next_message("error")["message"]
        for path in (
            "static/../../../../etc/passwd",
            "static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
            "static/..%2f..%2f..%2fpyproject.toml",
            "static/../__init__.py",
            "static/" + urllib.parse.quote(str(songs["short"])),
            "api/songs",
            "short%20song.wav",
        ):
            assert http_status(server.url + path) == 404, path
        assert http_status(server.url) == 200 and http_status(server.url + "static/player.js") == 200
        page.send(type="bogus")
        assert "unknown message" in page.next_message("error")["message"]
        page.ws.send(b"\x00\x01")
        assert "unknown message" in page.next_message("error")["message"]
        # and the command line's song still opens
        page.send(type="open", song=page.hello["songs"][0]["id"])
        assert page.next_message("song")["name"] == songs["short"].name
    finally:
        page.close()


def test_upload_limit_while_streaming(tmp_path):
    """A body without (or with a wrong) length stops at the limit; nothing is kept."""
    store = SongStore(separator=None, executor=None, upload_dir=tmp_path, max_upload_bytes=10)

    async def chunks():
        for _ in range(3):
            yield b"12345"

    with pytest.raises(UploadTooLarge, match=r"x\.wav: larger than the upload limit"):
        asyncio.run(store.upload(chunks(), "x.wav", owner="page"))
    assert not list(tmp_path.iterdir()) and not store.songs


def test_help_is_fast_and_explains():
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "xumx_slicq_v2.demixui", "--help"], capture_output=True, text=True, cwd=REPO
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0
    for option in ("--input-file", "--model", "--runtime-backend", "--host", "--port", "--no-browser", "--listeners"):
        assert option in result.stdout
    assert elapsed < 2.0, f"--help took {elapsed:.2f} s"  # < 0.5 s on an idle machine; torch is never imported


def test_help_imports_no_heavy_module():
    code = (
        "import sys; from xumx_slicq_v2.demixui.cli import build_parser; build_parser().format_help(); "
        "print(sorted(m for m in ('torch', 'starlette', 'uvicorn', 'numpy', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"


def test_command_line_serves_and_stops(songs, listeners_file, tmp_path):
    """The command: prints its address, serves the page, answers the websocket, stops on Ctrl+C."""
    import signal

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xumx_slicq_v2.demixui",
            "--input-file",
            str(songs["short"]),
            "--model",
            "demo",
            "--no-browser",
            "--port",
            "0",
            "--listeners",
            str(listeners_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("demixui: serving http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[2]
        assert http_status(url) == 200
        page = Page(url.replace("http://", "ws://") + "ws")
        assert page.hello["songs"][0]["name"] == songs["short"].name and len(page.hello["listeners"]) == 2
        page.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    assert process.returncode == 0
    bad = subprocess.run(
        [sys.executable, "-m", "xumx_slicq_v2.demixui", "--input-file", str(tmp_path / "missing.wav"), "--no-browser"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "missing.wav: no such file" in bad.stderr


def test_default_listeners_are_the_demo_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("XUMX_DEMO_DATA", str(tmp_path))
    assert default_listeners_file() is None
    path = tmp_path / "cad1" / "task1" / "metadata" / "listeners.valid.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    assert default_listeners_file() == path


def test_default_model_is_demo_unless_published_weights_are_in_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no published weights there
    assert default_model() == "demo"
    resolve = checkpoint.resolve_model_dir

    def offline_in_place(name, download=True):
        assert not download  # never a download just to pick the default
        return tmp_path if name == "offline" else resolve(name, download)

    monkeypatch.setattr(checkpoint, "resolve_model_dir", offline_in_place)
    assert default_model() == "offline"
