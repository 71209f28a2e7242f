"""The io_network task's server: one process per trial, on 127.0.0.1, any free port.

Standard library only, Python 3.9. Each connection sends an 8-byte length and that many
bytes; after ``latency`` seconds the server replies with the CRC-32 of what it got and
closes. It prints its port on stdout, then serves until its stdin closes (so it never
outlives the trial that started it).
"""

from __future__ import annotations

import asyncio
import struct
import sys
import threading
import zlib

HEADER = struct.Struct("!Q")
REPLY = struct.Struct("!I")


async def _serve(latency_s: float, stop: asyncio.Event) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
            checksum = 0
            remaining = size
            while remaining:
                chunk = await reader.read(min(remaining, 1 << 20))
                if not chunk:
                    return
                checksum = zlib.crc32(chunk, checksum)
                remaining -= len(chunk)
            await asyncio.sleep(latency_s)
            writer.write(REPLY.pack(checksum))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()


def main(latency_s: float) -> None:
    """Serve until stdin reaches end of file."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # Python 3.9 binds the Event to the current loop
    stop = asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.run_until_complete(_serve(latency_s, stop))
