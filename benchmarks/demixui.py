"""The web mixer's latency and throughput, as a page sees them (a websocket client, no browser).

For each chunk length: upload a synthetic song, open it and time the first stem frame (upload, decoding and the
first chunk's separation: when playback can start), the last stem frame (the whole separation), then choose a
listener and time the last heard frame (NAL-R over the whole separated song, per ear, and its transfer). The
server runs in this process (`xumx_slicq_v2.demixui.server.serve_in_thread`) with one torch thread pool.

Prints a table and writes ``exp/benchmarks/demixui.json``.

    python benchmarks/demixui.py                          # demo model, 30 s song, chunks of 2 and 4 s
    python benchmarks/demixui.py --model realtime --seconds 60 --chunk-seconds 4 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import urllib.request
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
#: The listener chosen on the page: a moderate sloping loss in both ears, levels (dB HL) at the CAD1 frequencies.
LISTENER_LEVELS = (30, 35, 40, 50, 55, 60, 65, 70)
LISTENER_FREQUENCIES = (250, 500, 1000, 2000, 3000, 4000, 6000, 8000)


def measure(url: str, song: Path) -> dict[str, float]:
    """Seconds from the upload's start to the first and last stem frames; from choosing the listener to its
    last heard frame."""
    from websockets.sync.client import connect

    from xumx_slicq_v2.demixui.sessions import FRAME_HEADER, HEARD_FRAME, STEMS_FRAME  # torch, after parsing

    with connect(url.replace("http://", "ws://") + "ws", max_size=None) as ws:
        session = json.loads(ws.recv())["session"]
        started = time.perf_counter()
        request = urllib.request.Request(
            f"{url}api/upload?session={session}",
            data=song.read_bytes(),
            method="POST",
            headers={"X-File-Name": song.name},
        )
        with urllib.request.urlopen(request) as response:
            ws.send(json.dumps({"type": "open", "song": json.loads(response.read())["song"]}))
        length, received, times = None, {STEMS_FRAME: 0, HEARD_FRAME: 0}, {}
        while "heard" not in times:
            message = ws.recv()
            if isinstance(message, str):
                decoded = json.loads(message)
                if decoded["type"] == "song":
                    length = decoded["length"]
                elif decoded["type"] == "error":
                    raise SystemExit(decoded["message"])
                continue
            kind, _generation, start, count, _channels = FRAME_HEADER.unpack_from(message)
            received[kind] = int(start) + count
            now = time.perf_counter()
            if kind == STEMS_FRAME:
                times.setdefault("first_frame", now - started)
                if received[kind] >= length:
                    times["separated"] = now - started
                    listener_chosen = time.perf_counter()
                    levels = {
                        ear: {"levels": list(LISTENER_LEVELS), "frequencies": list(LISTENER_FREQUENCIES)}
                        for ear in ("left", "right")
                    }
                    ws.send(json.dumps({"type": "listener", **levels}))
            elif received[kind] >= length:
                times["heard"] = now - listener_chosen
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="realtime, offline, demo or a model directory")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the synthetic song")
    parser.add_argument("--chunk-seconds", type=float, nargs="+", default=[2.0, 4.0])
    parser.add_argument("--out", type=Path, default=REPOSITORY / "exp" / "benchmarks")
    args = parser.parse_args(argv)
    import soundfile as sf

    from data_prep.synth import render_song
    from xumx_slicq_v2.config import ChunkingConfig
    from xumx_slicq_v2.demixui.server import MixerSettings, create_app, serve_in_thread
    from xumx_slicq_v2.separator import Separator

    with tempfile.TemporaryDirectory() as folder:
        song = Path(folder) / "song.wav"
        sf.write(song, sum(render_song(1, args.seconds).values()).T, 44100, subtype="PCM_16")
        rows = []
        for chunk_seconds in args.chunk_seconds:
            separator = Separator.from_pretrained(args.model, chunking=ChunkingConfig(chunk_seconds=chunk_seconds))
            app = create_app(MixerSettings(model=args.model, max_upload_bytes=2**30), separator, {})
            with serve_in_thread(app) as url:
                times = measure(url, song)
            rows.append(
                {"chunk_seconds": chunk_seconds, **times, "real_time_factor": times["separated"] / args.seconds}
            )
            print(f"  chunks of {chunk_seconds:g} s: {times}")
    results = {
        "model": args.model,
        "song_seconds": args.seconds,
        "rows": rows,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg()},
    }
    print(f"\nmodel {args.model}, {args.seconds:g} s stereo 44.1 kHz song (load average {os.getloadavg()[0]:.1f})")
    print(f"{'chunk s':>8}  {'first frame s':>13}  {'separated s':>11}  {'x real time':>11}  {'listener s':>10}")
    for row in rows:
        print(
            f"{row['chunk_seconds']:>8g}  {row['first_frame']:>13.2f}  {row['separated']:>11.2f}  "
            f"{1 / row['real_time_factor']:>11.1f}  {row['heard']:>10.2f}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "demixui.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {args.out / 'demixui.json'}")


if __name__ == "__main__":
    main()
