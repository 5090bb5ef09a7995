"""Instructions per warm request, counted by callgrind (valgrind), which do
not depend on the machine's load the way requests per second do.

A server runs under `valgrind --tool=callgrind` (see `command`). Once its
pages are warm, `Counted` holds a few keep-alive connections open, sends
warm-up requests on them, zeroes the server's counters, sends a fixed
number of requests over the same connections (so no connection set-up is
counted), and dumps the counters: the instructions of every thread of the
server process over those requests. What the server does while idle
(larder reads the store's journal twice a second) is measured the same way
over a quiet spell and taken off, pro rata to the time the requests took.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import urllib.parse
from pathlib import Path

# Callgrind's defaults (no cache simulation), one output file per process, each
# dump readable by callgrind_annotate on its own (names written in full).
OPTIONS = ["--tool=callgrind", "--dump-instr=no", "--collect-jumps=no", "--compress-strings=no"]


def command(out_dir: Path, name: str) -> list[str]:
    """The valgrind command a server runs under; its dumps go to
    `out_dir/<name>.<pid>.out[.<n>]`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return ["valgrind", *OPTIONS, f"--callgrind-out-file={out_dir}/{name}.%p.out"]


def control(pid: int, action: str) -> None:
    """Asks the callgrind run of `pid` to `--zero` or `--dump` its counters
    (done by the time this returns)."""
    subprocess.run(["callgrind_control", action, str(pid)], check=True, capture_output=True, timeout=120)


def dumped_total(out_dir: Path, name: str, pid: int) -> int:
    """The instructions of the newest dump of `pid`."""
    dumps = sorted(out_dir.glob(f"{name}.{pid}.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    if not dumps:
        raise RuntimeError(f"no callgrind dump of {name} (pid {pid}) in {out_dir}")
    text = dumps[-1].read_text(errors="replace")
    found = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    if not found:
        raise RuntimeError(f"no total in {dumps[-1]}")
    return int(found.group(1))


def counted(out_dir: Path, name: str, pid: int, work) -> tuple[int, float]:
    """(instructions, seconds) of `pid` while `work()` runs."""
    control(pid, "--zero")
    started = time.monotonic()
    work()
    seconds = time.monotonic() - started
    control(pid, "--dump")
    return dumped_total(out_dir, name, pid), seconds


def idle_rate(out_dir: Path, name: str, pid: int, seconds: float = 5.0) -> float:
    """Instructions per second of `pid` with no request in flight."""
    total, elapsed = counted(out_dir, name, pid, lambda: time.sleep(seconds))
    return total / elapsed


class Connections:
    """Keep-alive connections to one URL, each sending requests one after
    another (a request the way wrk sends it: `Host` and the given headers)."""

    def __init__(self, url: str, headers: dict, count: int):
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname == "127.0.0.1", url
        self.port = parts.port
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{parts.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.count = count
        self.loop = asyncio.new_event_loop()
        self.streams: list = []

    def __enter__(self) -> "Connections":
        self.streams = [self.loop.run_until_complete(asyncio.open_connection("127.0.0.1", self.port))
                        for _ in range(self.count)]
        return self

    def __exit__(self, *exc) -> None:
        for _, writer in self.streams:
            writer.close()
        self.loop.close()

    def send(self, requests: int) -> int:
        """Sends `requests` in all, spread over the connections; returns the
        body bytes received. Every answer must be a 200 with a length."""
        per, extra = divmod(requests, len(self.streams))

        async def every_connection():
            return await asyncio.gather(*(self.exchange(reader, writer, per + (i < extra))
                                          for i, (reader, writer) in enumerate(self.streams)))

        return sum(self.loop.run_until_complete(every_connection()))

    async def exchange(self, reader, writer, requests: int) -> int:
        received = 0
        for _ in range(requests):
            writer.write(self.request)
            status = (await reader.readline()).split()
            if len(status) < 2 or status[1] != b"200":
                raise RuntimeError(f"answer {status!r} to {self.request!r}")
            length = None
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError(f"an answer without Content-Length to {self.request!r}")
            received += len(await reader.readexactly(length))
        return received
