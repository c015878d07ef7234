"""The server's prebuilt-frame extension (platform/wsserver.py), on a real uvicorn server.

The hub writes one frame, built once, to every caught-up connection. These tests pin down that
such a frame is byte for byte what websockets itself would send, that a real client reads it in
order among the ordinary ASGI sends (with and without permessage-deflate), and that the write
refuses once the connection is closing, so the hub falls back to the ASGI send."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from doorstep.platform.wsserver import EXTENSION, WS_PROTOCOL, text_frame
from tests.conftest import free_port


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 70_000])
def test_a_prebuilt_frame_is_what_websockets_sends(size: int) -> None:
    text = ("é" * size)[: max(0, size // 2)] + "x" * (size - size // 2)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert text_frame(text) == expected


class Probe:
    """An ASGI app: on "go" it writes a, b (prebuilt), c; on "close" it closes and reports
    whether a prebuilt write after the close was refused."""

    def __init__(self) -> None:
        self.after_close: list[bool] = []
        self.extension_seen: list[bool] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert scope["type"] == "websocket"
        extension = scope.get("extensions", {}).get(EXTENSION)
        self.extension_seen.append(extension is not None)
        write = extension["write"]
        assert not write(text_frame("too early")), "nothing before the handshake completes"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "go":
                await send({"type": "websocket.send", "text": json.dumps({"n": "a"})})
                assert write(text_frame(json.dumps({"n": "b", "pad": "x" * 300})))
                await send({"type": "websocket.send", "text": json.dumps({"n": "c"})})
            elif message.get("text") == "close":
                await send({"type": "websocket.close", "code": 1000})
                self.after_close.append(write(text_frame("too late")))
                return


@pytest.fixture
def probe_server() -> Iterator[tuple[Probe, str]]:
    probe, port = Probe(), free_port()
    config = uvicorn.Config(probe, host="127.0.0.1", port=port, ws=WS_PROTOCOL, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield probe, f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "permessage-deflate"])
def test_a_client_reads_prebuilt_frames_in_order_among_ordinary_sends(
    probe_server: tuple[Probe, str], compression: str | None
) -> None:
    probe, url = probe_server
    with connect(url, compression=compression) as client:
        negotiated = client.protocol.extensions
        assert bool(negotiated) == (compression is not None)
        for _ in range(3):
            client.send("go")
            got = [json.loads(client.recv(timeout=10))["n"] for _ in range(3)]
            assert got == ["a", "b", "c"]
        client.send("close")
        deadline = time.monotonic() + 10
        while not probe.after_close:
            assert time.monotonic() < deadline, "the app did not close"
            time.sleep(0.01)
    assert probe.extension_seen == [True]
    assert probe.after_close == [False], "no frame may follow the close frame"


# Served by gunicorn in the test below (an import path it can load).
GUNICORN_PROBE = Probe()


def test_the_gunicorn_worker_runs_the_same_protocol(tmp_path: Any) -> None:
    """Production's `-k doorstep.gunicorn_worker.Worker`: the probe only answers with the
    extension there (without it, it fails the connection)."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "tests.platform.test_wsserver:GUNICORN_PROBE"]
    command += ["-k", "doorstep.gunicorn_worker.Worker", "-w", "1", "-b", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = connect(f"ws://127.0.0.1:{port}/", open_timeout=5)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        with client:
            client.send("go")
            assert [json.loads(client.recv(timeout=10))["n"] for _ in range(3)] == ["a", "b", "c"]
    finally:
        server.terminate()
        server.wait(timeout=30)
