"""The web mixer's Starlette app: the page, song uploads and one websocket per open page.

Routes: ``GET /`` the page, ``GET /static/...`` its scripts (package data), ``POST /api/upload?session=ID`` a song
(raw body, the file name in ``X-File-Name``; at most `MixerSettings.max_upload_bytes`), ``WS /ws`` the page's
session (`xumx_slicq_v2.demixui.sessions`). Nothing else is served: songs are reached by their random ids through
the websocket, never by path. Requests whose ``Origin`` is another site are refused, so that other pages open in
the browser cannot use the mixer. Every response carries the headers that make the page cross-origin isolated:
its audio thread reads the stems from shared memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..hearing import DEFAULT_NFIR, Listener
from ..separator import Separator
from .sessions import Session, run_session
from .songs import SongStore, UploadTooLarge

log = logging.getLogger(__name__)

#: The page and its scripts (package data).
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Headers of every response: cross-origin isolation (SharedArrayBuffer for the audio thread), no caching.
RESPONSE_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class MixerSettings:
    """What the server offers.

    Attributes:
        model: the model's name or folder (shown on the page).
        max_upload_bytes: the upload size limit.
        input_file: a song every page opens first, or ``None``.
        listeners_file: the CAD1 listeners JSON the listeners come from (shown on the page), or ``None``.
        nfir: NAL-R filter order (the recipe's ``nalr.nfir``).
    """

    model: str
    max_upload_bytes: int
    input_file: Path | None = None
    listeners_file: Path | None = None
    nfir: int = DEFAULT_NFIR


class HeadersMiddleware:
    """Adds `RESPONSE_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    *((key.lower().encode(), value.encode()) for key, value in RESPONSE_HEADERS.items()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a request comes from the mixer's own page (or from no page at all: no ``Origin`` header)."""
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc == headers.get("host")


def create_app(settings: MixerSettings, separator: Separator, listeners: Mapping[str, Listener]) -> Starlette:
    """The app; its lifespan owns the separation thread, the upload folder and the songs (``app.state.store``,
    and the open pages' sessions by id, ``app.state.sessions``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="separate") as executor,
            tempfile.TemporaryDirectory(prefix="demixui-uploads-") as upload_dir,
        ):
            store = SongStore(separator, executor, Path(upload_dir), settings.max_upload_bytes)
            if settings.input_file is not None:
                store.add(settings.input_file, settings.input_file.name)
            app.state.store, app.state.sessions = store, {}
            try:
                yield
            finally:
                await store.close()

    async def index(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    async def refuse(request: Request, error: str, status_code: int) -> Response:
        """Answer ``error`` once the body is read (at most the upload limit), so that the client, still sending,
        reads the answer instead of a broken connection."""
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > settings.max_upload_bytes:
                break
        return JSONResponse({"error": error}, status_code=status_code)

    async def upload(request: Request) -> Response:
        if not same_origin(request.headers):
            return await refuse(request, "uploads come from the mixer's page only", 403)
        session = request.app.state.sessions.get(request.query_params.get("session", ""))
        if session is None:
            return await refuse(request, "no such page session (reload the page)", 403)
        name = Path(unquote(request.headers.get("x-file-name", "upload"))).name or "upload"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_upload_bytes:
            limit = settings.max_upload_bytes / 2**20
            return JSONResponse({"error": f"{name}: larger than the upload limit of {limit:g} MiB"}, status_code=413)
        store: SongStore = request.app.state.store
        try:
            song = await store.upload(request.stream(), name, owner=session.id)
        except UploadTooLarge as err:
            return JSONResponse({"error": str(err)}, status_code=413)
        except OSError as err:
            return JSONResponse({"error": f"{name}: the server cannot store it ({err.strerror})"}, status_code=507)
        if session.id not in request.app.state.sessions:  # the page closed while uploading
            await store.release(song)
            return JSONResponse({"error": "the page was closed"}, status_code=410)
        return JSONResponse({"song": song.id, "name": song.name})

    async def websocket_endpoint(websocket: WebSocket) -> None:
        if not same_origin(websocket.headers):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        sessions: dict[str, Session] = websocket.app.state.sessions
        session = Session(secrets.token_urlsafe(12), websocket, websocket.app.state.store, listeners, settings.nfir)
        sessions[session.id] = session
        listeners_file = str(settings.listeners_file) if settings.listeners_file else None
        session.hello(settings.model, listeners_file, settings.max_upload_bytes)

        async def receive() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while (message := await websocket.receive())["type"] != "websocket.disconnect":
                    text = message.get("text")
                    try:
                        decoded = json.loads(text) if text is not None else "(binary message)"
                    except ValueError:
                        decoded = text
                    await session.handle(decoded)

        try:
            await run_session(session, receive)
        finally:
            sessions.pop(session.id, None)

    routes = [
        Route("/", index),
        Route("/api/upload", upload, methods=["POST"]),
        WebSocketRoute("/ws", websocket_endpoint),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(HeadersMiddleware)
    return app


def uvicorn_server(app: Starlette) -> uvicorn.Server:
    """The uvicorn server of ``app`` (websockets; page messages of at most 1 MiB)."""
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="auto", lifespan="on", ws_max_size=1 << 20))


async def serve(app: Starlette, sock: socket.socket, on_ready: Callable[[], None] | None = None) -> None:
    """Serve ``app`` on the listening socket ``sock`` until interrupted; ``on_ready()`` once it accepts."""
    server = uvicorn_server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if server.started and on_ready is not None:
        on_ready()
    await task


@contextlib.contextmanager
def serve_in_thread(app: Starlette, host: str = "127.0.0.1", timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` on a free port of ``host`` from a background thread (tests, benchmarks, notebooks).

    Yields the page's address once the server accepts connections; stops the server on exit.
    """
    sock = socket.create_server((host, 0))
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="demixui server")
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web mixer's server did not start")
            time.sleep(0.02)
        yield f"http://{host}:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
