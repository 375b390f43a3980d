"""Overload soak: the real service on loopback, driven at a multiple of the rate it sustains, for a while.

    python -m bench.soak --duration 600 --rate-factor 2 [--workers 6 --queue-size 64] [--photo-mix] [--out FILE]

It starts `facecompare serve` (a fresh data directory, the cached models), measures the sustainable rate
with a closed loop of `workers + queue_size` clients (as many as it admits, so batches fill as they do
under overload; capped at 32), then sends compares of two Full HD JPEGs open-loop at
`rate-factor` times that rate. With `--photo-mix`, the compares cycle through bench.latency's pairs instead
(Full HD portraits, every 4th target a group photo), so requests of several canvas sizes meet in the
batchers. Passes when: every answer is 200 or the documented 503 / 1002 with
Retry-After; admitted compares finish within the bound their admission limit implies; /readyz and /metrics
answer within a second throughout; and the server's memory does not grow from the first half of the run
to the second. The report goes to stdout and, with --out, to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.latency import make_pairs
from bench.photos import full_hd_jpeg
from service.config import ServiceConfig
from tests.memory import rss_mib
from tests.service_process import ServiceProcess

PROBE_BOUND_S = 1.0
# The server's RSS may wander by this much between the halves of a run (allocator and runtime arenas).
RSS_DRIFT_MIB = 64.0
REQUEST_TIMEOUT_S = 120.0


@dataclass
class Tally:
    """What the load saw: answers by (status, errorCode), latencies of admitted compares, probes, RSS."""

    answers: Counter[tuple[int, int | None]] = field(default_factory=Counter)
    undocumented: list[str] = field(default_factory=list)
    admitted_s: list[float] = field(default_factory=list)
    probe_s: dict[str, list[float]] = field(default_factory=lambda: {"/readyz": [], "/metrics": []})
    probe_failures: list[str] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    shed_by_client: int = 0


async def compare(session: aiohttp.ClientSession, url: str, payload: bytes, tally: Tally) -> None:
    started = time.monotonic()
    try:
        async with session.post(url + "/modules/compare", data=payload,
                                headers={"Content-Type": "application/json"}) as response:
            body = await response.json(content_type=None)
            retry_after = response.headers.get("Retry-After")
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        tally.undocumented.append(f"{type(exc).__name__}: {exc}")
        return
    status, code = response.status, body.get("errorCode")
    tally.answers[(status, code)] += 1
    if status == 200 and "result" in body:
        tally.admitted_s.append(time.monotonic() - started)
    elif not (status == 503 and code == 1002 and retry_after):
        tally.undocumented.append(f"{status} {body}")


Payloads = Iterator[bytes]


def json_body(origin: bytes, target: bytes) -> bytes:
    return json.dumps({"originFace": base64.b64encode(origin).decode(),
                       "targetFace": base64.b64encode(target).decode()}).encode()


def payloads(photo_mix: bool) -> Payloads:
    """The request bodies, built once and sent in turn: one portrait pair, or bench.latency's mix."""
    if not photo_mix:
        return itertools.repeat(json_body(full_hd_jpeg("obama.jpg"), full_hd_jpeg("obama2.jpg")))
    return itertools.cycle([json_body(pair.origin, pair.target) for pair in make_pairs(group_every=4)])


async def closed_loop(session: aiohttp.ClientSession, url: str, bodies: Payloads, clients: int,
                      seconds: float) -> float:
    """Compares per second with `clients` callers, each waiting for its answer before the next call."""
    tally = Tally()
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            await compare(session, url, next(bodies), tally)

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return tally.answers[(200, None)] / (time.monotonic() - started)


async def open_loop(session: aiohttp.ClientSession, url: str, bodies: Payloads, rate: float, seconds: float,
                    max_outstanding: int, tally: Tally) -> None:
    """Arrivals at a fixed rate whatever the answers; beyond `max_outstanding` the client itself sheds."""
    outstanding: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - started < seconds:
        due = int((now - started) * rate) + 1
        for _ in range(due - sent):
            if len(outstanding) >= max_outstanding:
                tally.shed_by_client += 1
                continue
            task = asyncio.create_task(compare(session, url, next(bodies), tally))
            outstanding.add(task)
            task.add_done_callback(outstanding.discard)
        sent = due
        await asyncio.sleep(max(0.0, started + due / rate - time.monotonic()))
    await asyncio.gather(*outstanding)


async def probe(session: aiohttp.ClientSession, url: str, pid: int, stop: asyncio.Event, tally: Tally) -> None:
    """Every second: /readyz and /metrics, timed, and the server's RSS."""
    started = time.monotonic()
    while not stop.is_set():
        for path in tally.probe_s:
            begun = time.monotonic()
            try:
                async with session.get(url + path, timeout=aiohttp.ClientTimeout(total=10)) as response:
                    await response.read()
                    if response.status != 200:
                        tally.probe_failures.append(f"{path} {response.status}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                tally.probe_failures.append(f"{path} {type(exc).__name__}")
            tally.probe_s[path].append(time.monotonic() - begun)
        tally.rss.append((time.monotonic() - started, rss_mib(pid)))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if len(values) > 1 \
        else (values[0] if values else 0.0)


def judge(tally: Tally, latency_bound: float) -> list[tuple[str, bool]]:
    """Each pass criterion with its verdict."""
    halves = len(tally.rss) // 2
    first, second = [r for _, r in tally.rss[:halves]], [r for _, r in tally.rss[halves:]]
    drift = (statistics.median(second) - statistics.median(first)) if first and second else 0.0
    probe_max = max((max(v) for v in tally.probe_s.values() if v), default=0.0)
    return [
        (f"only 200 and 503/1002 with Retry-After ({len(tally.undocumented)} other)", not tally.undocumented),
        ("some compares admitted and some refused (the load really was over capacity)",
         tally.answers[(200, None)] > 0 and tally.answers[(503, 1002)] > 0),
        (f"admitted latency max {max(tally.admitted_s, default=0):.2f} s <= bound {latency_bound:.2f} s",
         max(tally.admitted_s, default=0) <= latency_bound),
        (f"/readyz and /metrics max {probe_max:.3f} s <= {PROBE_BOUND_S} s, {len(tally.probe_failures)} failed",
         probe_max <= PROBE_BOUND_S and not tally.probe_failures),
        (f"server RSS drift between halves {drift:+.1f} MiB <= {RSS_DRIFT_MIB} MiB", drift <= RSS_DRIFT_MIB),
    ]


def report(args: argparse.Namespace, sustainable: float, tally: Tally, latency_bound: float,
           verdicts: list[tuple[str, bool]]) -> str:
    admitted = tally.admitted_s
    rss = [r for _, r in tally.rss]
    lines = [
        f"soak: {args.duration:g} s at {args.rate_factor:g} x the sustainable rate; workers={args.workers}"
        f" queue_size={args.queue_size} (admits {args.workers + args.queue_size} compares at once)",
        "photos: " + ("bench.latency's mix (Full HD portraits, every 4th target a group photo)" if args.photo_mix
                      else "one pair of Full HD portraits"),
        f"sustainable rate (closed loop, {calibration_clients(args)} clients, {args.calibrate:g} s):"
        f" {sustainable:.2f} compares/s",
        f"offered rate: {sustainable * args.rate_factor:.2f} compares/s",
        "answers: " + ", ".join(f"{status}/{code or '-'}: {n}" for (status, code), n in sorted(
            tally.answers.items(), key=lambda item: (item[0][0], item[0][1] or 0))),
        f"shed by the client (over {args.max_outstanding} outstanding): {tally.shed_by_client}",
        f"admitted compares/s: {len(admitted) / args.duration:.2f}",
        f"admitted latency s: p50 {quantile(admitted, 0.5):.2f} p95 {quantile(admitted, 0.95):.2f}"
        f" p99 {quantile(admitted, 0.99):.2f} max {max(admitted, default=0):.2f}",
        *(f"{path} latency s: p50 {quantile(v, 0.5):.3f} p99 {quantile(v, 0.99):.3f} max {max(v, default=0):.3f}"
          f" ({len(v)} probes)" for path, v in tally.probe_s.items()),
        f"server RSS MiB: first {rss[0] if rss else 0:.0f} min {min(rss, default=0):.0f}"
        f" max {max(rss, default=0):.0f} last {rss[-1] if rss else 0:.0f} ({len(rss)} samples)",
        "server RSS over time (s: MiB): " + " ".join(
            f"{t:.0f}:{r:.0f}" for t, r in tally.rss[:: max(1, len(tally.rss) // 20)]),
        *(f"undocumented: {line[:200]}" for line in tally.undocumented[:5]),
        *(f"probe failure: {line}" for line in tally.probe_failures[:5]),
        *(f"{'PASS' if ok else 'FAIL'} {text}" for text, ok in verdicts),
        f"verdict: {'PASS' if all(ok for _, ok in verdicts) else 'FAIL'}",
    ]
    return "\n".join(lines) + "\n"


def calibration_clients(args: argparse.Namespace) -> int:
    return min(args.workers + args.queue_size, 32)


async def drive(args: argparse.Namespace, server: ServiceProcess, key: str,
                bodies: Payloads) -> tuple[float, Tally, float]:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=args.max_outstanding + 8)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers={"x-api-key": key}) as session:
        sustainable = await closed_loop(session, server.url, bodies, calibration_clients(args), args.calibrate)
        # Admitted compares wait behind at most `workers + queue_size` others: that many service times, with
        # room for a full batch's wait and a slow runner.
        latency_bound = 2.0 * (args.workers + args.queue_size) / max(sustainable, 0.1) + 5.0
        tally = Tally()
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(session, server.url, server.pid, stop, tally))
        await open_loop(session, server.url, bodies, sustainable * args.rate_factor, args.duration,
                        args.max_outstanding, tally)
        stop.set()
        await prober
    return sustainable, tally, latency_bound


def run(args: argparse.Namespace) -> tuple[bool, str]:
    """Start the service, soak it, stop it; the verdict and the report."""
    bodies = payloads(args.photo_mix)
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch, ServiceProcess(
            Path(scratch) / "data", workers=args.workers, queue_size=args.queue_size) as server:
        # Ready first: the key comes on stdout, read by a thread of its own that may lag the "listening" line.
        server.wait_ready(120)
        key = server.printed_key
        assert key, "the fresh data directory printed no key"
        sustainable, tally, latency_bound = asyncio.run(drive(args, server, key, bodies))
    verdicts = judge(tally, latency_bound)
    return all(ok for _, ok in verdicts), report(args, sustainable, tally, latency_bound, verdicts)


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--duration", type=float, default=600.0, help="seconds of overload (default 600)")
    options.add_argument("--rate-factor", type=float, default=2.0, help="offered / sustainable rate (default 2)")
    options.add_argument("--calibrate", type=float, default=20.0, help="seconds to measure the sustainable rate")
    shipped = ServiceConfig()
    options.add_argument("--workers", type=int, default=shipped.workers,
                         help=f"the service's workers (default {shipped.workers}, the shipped default)")
    options.add_argument("--queue-size", type=int, default=shipped.queue_size,
                         help=f"the service's queue_size (default {shipped.queue_size})")
    options.add_argument("--max-outstanding", type=int, default=256,
                         help="requests the client keeps open at once; beyond, it sheds them itself")
    options.add_argument("--photo-mix", action="store_true",
                         help="cycle through bench.latency's pairs (portraits, every 4th target a group photo)")
    options.add_argument("--out", type=Path, help="also write the report here")
    return options


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    passed, text = run(args)
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
