"""The built-in I/O tasks (claim 4: threads suit I/O): a sleep, real file I/O and real
sockets to a server in another process. Standard library only, Python 3.9."""

from __future__ import annotations

import os
import sys
import time
import zlib

from .api import Session, Setting, items_done

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Tuple

    from .api import Facts, Params


def io_sleep(payload: bytes, params: Params) -> int:
    """The seed's ``time.sleep`` example: waits without using the CPU (and without the GIL)."""
    checksum = zlib.crc32(payload)
    time.sleep(params["seconds"])
    return checksum


async def io_sleep_async(payload: bytes, params: Params) -> int:
    """``io_sleep`` for the asyncio model: ``asyncio.sleep`` on the event loop."""
    import asyncio

    checksum = zlib.crc32(payload)
    await asyncio.sleep(params["seconds"])
    return checksum


class FolderSession(Session):
    """io_file: a fresh temporary folder per trial, removed afterwards."""

    def __init__(self, params: Params, payload: bytes, setting: Setting) -> None:
        import tempfile

        super().__init__(params, payload, setting)
        folder = tempfile.mkdtemp(prefix="pipeline-io-", dir=params["directory"] or None)
        self.params = dict(params, _folder=folder)

    def item(self, index: int) -> Tuple[bytes, Params]:
        return self.payload, dict(self.params, _index=index)

    def close(self, items: List[Dict[str, Any]]) -> Facts:
        import shutil

        shutil.rmtree(self.params["_folder"], ignore_errors=True)
        moved = items_done(items) * self.params["files"] * len(self.payload)
        return {"bytes_written": moved, "bytes_read": moved}


def io_file(payload: bytes, params: Params) -> int:
    """Write the payload to ``files`` files in turn: write, fsync (unless ``fsync: false``),
    read it back, check it and delete the file. Several files per item average out the
    disk's latency jitter."""
    for number in range(params["files"]):
        path = os.path.join(params["_folder"], f"item-{params['_index']}-{number}")
        with open(path, "wb", buffering=0) as handle:
            handle.write(payload)
            if params["fsync"]:
                os.fsync(handle.fileno())
        with open(path, "rb", buffering=0) as handle:
            data = handle.read()
        os.remove(path)
        if data != payload:
            raise OSError(f"{path}: read back {len(data)} bytes that differ from those written")
    return len(payload)


class ServerSession(Session):
    """io_network: a local TCP server in its own process (so it never competes with the
    measured workers for their GIL), answering each request after ``latency`` seconds."""

    def __init__(self, params: Params, payload: bytes, setting: Setting) -> None:
        import subprocess

        super().__init__(params, payload, setting)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.server = subprocess.Popen(
            [sys.executable, "-c", _SERVER_BOOT, root, repr(params["latency"])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.server.stdout is not None
        line = self.server.stdout.readline().decode().strip()
        if not line.isdigit():
            self.server.kill()
            raise RuntimeError(f"the io_network server did not start (said {line!r})")
        self.params = dict(params, _host="127.0.0.1", _port=int(line))

    def close(self, items: List[Dict[str, Any]]) -> Facts:
        assert self.server.stdin is not None
        self.server.stdin.close()  # the server exits when its stdin closes
        try:
            self.server.wait(timeout=5)
        except Exception:  # any failure to stop politely ends in a kill
            self.server.kill()
            self.server.wait()
        done = items_done(items)
        return {"requests": done, "bytes_sent": done * (len(self.payload) + 8)}


_SERVER_BOOT = (
    "import sys; sys.path.append(sys.argv[1])\n"
    "from pipeline.worker import netserver; netserver.main(float(sys.argv[2]))\n"
)


def io_network(payload: bytes, params: Params) -> int:
    """One request to the trial's server over a new blocking TCP connection: an 8-byte
    length and the payload out, the server's 4-byte CRC-32 of what it got back."""
    import socket

    from .netserver import HEADER, REPLY

    address = (params["_host"], params["_port"])
    with socket.create_connection(address, timeout=params["timeout"]) as connection:
        connection.sendall(HEADER.pack(len(payload)))
        connection.sendall(payload)
        reply = b""
        while len(reply) < REPLY.size:
            chunk = connection.recv(REPLY.size - len(reply))
            if not chunk:
                raise ConnectionError("the server closed the connection before replying")
            reply += chunk
    return int(REPLY.unpack(reply)[0])


async def io_network_async(payload: bytes, params: Params) -> int:
    """``io_network`` for the asyncio model: the same request over asyncio streams."""
    import asyncio

    from .netserver import HEADER, REPLY

    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(params["_host"], params["_port"]), params["timeout"]
    )
    try:
        writer.write(HEADER.pack(len(payload)))
        writer.write(payload)
        await writer.drain()
        reply = await asyncio.wait_for(reader.readexactly(REPLY.size), params["timeout"])
    finally:
        writer.close()
        await writer.wait_closed()
    return int(REPLY.unpack(reply)[0])
