"""The benchmarks' HTTP load generator: raw HTTP/1.1 keep-alive connections on asyncio.

Raw sockets rather than an HTTP client library: the generator shares the
machine's cores with the servers it measures, and every microsecond it spends
is one the servers do not get. Each connection sends the prepared request
bodies one after the other (a request is sent only once the previous answer
is read), so ``connections`` is the concurrency. A 503 answer (pushback) is
counted with the other errors and followed by a 50 ms pause on that
connection. Latency is request sent -> whole answer read, for answers with
the expected status that finished before the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["run_load"]


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[int, int] = {}
        self.sample_error: str | None = None


async def _connection(
    port: int,
    head: bytes,
    ok: int,
    requests: Iterator[bytes],
    deadline: float,
    stats: Stats,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            try:
                body = next(requests)
            except StopIteration:
                return
            started = time.perf_counter()
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            answer = await reader.readexactly(length)
            elapsed = time.perf_counter() - started
            status = int(status_line.split()[1])
            if status == ok:
                if time.perf_counter() <= deadline:
                    stats.latencies.append(elapsed)
            else:
                stats.errors[status] = stats.errors.get(status, 0) + 1
                stats.sample_error = stats.sample_error or answer[:300].decode("utf-8", "replace")
                if status == 503:
                    await asyncio.sleep(0.05)
    finally:
        writer.close()


async def _drive(
    port: int, head: bytes, ok: int, requests: list[bytes], duration: float, connections: int
) -> Stats:
    stats = Stats()
    source = iter(requests)
    deadline = time.perf_counter() + duration
    await asyncio.gather(
        *(_connection(port, head, ok, source, deadline, stats) for _ in range(connections))
    )
    return stats


def run_load(
    port: int,
    path: str,
    content_type: str,
    ok: int,
    requests: list[bytes],
    duration: float,
    connections: int,
) -> dict[str, Any]:
    """POST ``requests`` to 127.0.0.1:``port`` for ``duration`` seconds; the figures as JSON.

    Returns:
        ``completed`` and ``per_s`` (answers with status ``ok``), p50/p99
        latency, ``errors`` by status (503 pushback included), a sample error
        body, and whether the prepared requests ran out before the deadline.
    """
    import uvloop

    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Content-Length: "
    ).encode()
    started = time.perf_counter()
    stats = uvloop.run(_drive(port, head, ok, requests, duration, connections))
    wall = time.perf_counter() - started
    done = len(stats.latencies)
    latencies = sorted(stats.latencies)
    p50 = latencies[len(latencies) // 2] if latencies else None
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None
    return {
        "duration_s": duration,
        "wall_s": round(wall, 3),
        "connections": connections,
        "completed": done,
        "per_s": round(done / duration, 1),
        "p50_latency_s": None if p50 is None else round(p50, 4),
        "p99_latency_s": None if p99 is None else round(p99, 4),
        "errors": stats.errors,
        "sample_error": stats.sample_error,
        "requests_prepared": len(requests),
        "ran_out_of_requests": done + sum(stats.errors.values()) >= len(requests),
    }
