#!/usr/bin/env python3
"""A "far upstream": a TCP forwarder on 127.0.0.1 that makes a local
server look like one across the internet, without netem.

Each accepted connection is forwarded to TARGET with, in each direction:

- half the round-trip delay (default 40 ms round trip, so 20 ms each way),
  applied to every chunk while keeping order, as a delay line does;
- a rate cap (default 160 Mbit/s per connection and direction), as a
  serialization delay: a chunk of n bytes occupies the link for n/rate s;
- one extra round trip before the first byte from the client is forwarded,
  standing in for the TCP handshake a real far server costs.

Backpressure is real: a bounded queue per direction stops reading when the
far side is slower than the near side.

Every connection and every HTTP request line (client to server) is written
to the --log file: `conn N` and `req N METHOD PATH`, so the harness can
count upstream connections and requests of one run.

    forwarder.py --listen 127.0.0.1:PORT --target 127.0.0.1:PORT \
        [--rtt-ms 40] [--rate-mbit 160] [--log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time

CHUNK = 64 * 1024
QUEUE_CHUNKS = 64
REQUEST_LINE = re.compile(rb"^(GET|HEAD|POST|PUT|DELETE|OPTIONS) (\S+) HTTP/1\.[01]\r?$")


class Log:
    def __init__(self, path: str | None):
        self.file = open(path, "a", buffering=1) if path else None
        self.connections = 0

    def write(self, line: str) -> None:
        if self.file:
            self.file.write(line + "\n")


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, one_way: float,
               rate: float, start_at: float, on_data=None) -> None:
    """Copies reader to writer through a delay line with a rate cap."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(QUEUE_CHUNKS)

    async def receive():
        link_free = start_at
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if on_data:
                    on_data(data)
                now = loop.time()
                departs = max(now, link_free)
                link_free = departs + len(data) / rate
                await queue.put((link_free + one_way, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put(None)

    async def deliver():
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                due, data = item
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    await asyncio.gather(receive(), deliver())


class RequestLines:
    """Finds HTTP request lines in a client byte stream."""

    def __init__(self, log: Log, conn: int):
        self.buffer = b""
        self.log = log
        self.conn = conn

    def __call__(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > 8192:
            self.buffer = b""
        for line in lines:
            m = REQUEST_LINE.match(line)
            if m:
                self.log.write(f"req {self.conn} {m.group(1).decode()} {m.group(2).decode('latin-1')}")


async def handle(client_r, client_w, args, log: Log) -> None:
    loop = asyncio.get_running_loop()
    log.connections += 1
    conn = log.connections
    log.write(f"conn {conn} {time.time():.3f}")
    one_way = args.rtt_ms / 2000.0
    rate = args.rate_mbit * 1e6 / 8
    try:
        server_r, server_w = await asyncio.open_connection(*args.target)
    except OSError:
        client_w.close()
        return
    # The handshake a real far server costs: nothing flows for one round trip.
    start = loop.time() + 2 * one_way
    try:
        await asyncio.gather(
            pipe(client_r, server_w, one_way, rate, start, RequestLines(log, conn)),
            pipe(server_r, client_w, one_way, rate, start),
        )
    finally:
        for w in (server_w, client_w):
            try:
                w.close()
            except OSError:
                pass


def parse_addr(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", type=parse_addr, required=True)
    p.add_argument("--target", type=parse_addr, required=True)
    p.add_argument("--rtt-ms", type=float, default=40.0)
    p.add_argument("--rate-mbit", type=float, default=160.0)
    p.add_argument("--log")
    args = p.parse_args()
    if args.listen[0] not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("forwarder: listens on loopback only")
    log = Log(args.log)
    server = await asyncio.start_server(lambda r, w: handle(r, w, args, log), *args.listen,
                                        reuse_address=True, backlog=512)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"forwarder listening on {args.listen[0]}:{args.listen[1]} -> {args.target[0]}:{args.target[1]} "
          f"rtt={args.rtt_ms}ms rate={args.rate_mbit}Mbit/s", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
