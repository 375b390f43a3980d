"""Latency and throughput of a running service over loopback, with real photo pairs.

    python -m bench.latency [--url URL] [--concurrency 1,4,16] [--duration S] [--api-key K] [--json]

Pairs: the one-face test photos as 1920x1080 JPEGs against each other ("portrait"), and every
`--group-every`-th request a portrait against one of the group photos ("group"). Each level runs
for `--duration` seconds or `--max-requests` requests, whichever ends first. Without `--url`, a
`facecompare serve` is started on 127.0.0.1 with a temporary data directory and its fresh key (from
`--checkout DIR`: another checkout's code), and its time from start to `/readyz` 200 is reported too.
The server's CPU time per compare (user + system after the warm-up, and the system part alone) tells what
the machine could serve alone, however busy it is now; its threads' waits per compare (voluntary context
switches) count the hand-offs between them, and its minor page faults per compare the memory it gives back
and takes again (the in-process side reports both counters too). The client's own
CPU per compare (this process, user + system) is reported beside it: it runs on the same cores, so the
compares/s at a level can be read against the full CPU-bound limit and against the limit with the client's
share taken out. The aiohttp client does as little as it can: each pair's multipart body is built once
(aiohttp's own writer, so the server receives the same bytes and headers as from a `FormData`) and sent as it
is. At concurrency 1 every other request is sent by a plainer client instead (`plain_client`: the
standard library's blocking `http.client` on a keep-alive connection of its own, the same body and headers),
which costs less time on this machine's cores than aiohttp's client: a real kiosk's client runs on another
machine, so the HTTP figure is given both ways. From the server's own metrics, each level also reports the
mean time its pipeline took per compare (`server_pipeline_ms_mean`, decode and compare) and what the client's
mean latency adds to it (`outside_pipeline_ms_mean`): the cost of HTTP, the request path and (under load)
the queue, measured on the same requests, so it does not swing with the compare's own speed.
The server's peak RSS is its VmHWM, from its pid (`--pid`, the one started, or the process listening on
the URL's port). With `--sample-runnable`, how many of the server's threads could use a core, sampled through
each level (`server_runnable_threads`: the share of samples with fewer runnable threads than cores is what a
quiet machine would leave idle, whatever else runs now); off by default, as the sampling costs the client
about 1% of a core.

Beside the HTTP figures, the same pairs are compared in process (bench/inprocess.py, a process of its own
running the served checkout's code): at concurrency 1, one in-process compare before each HTTP one, so
both meet the same load. The ratios that judge the service against its own pipeline come from the two:
the HTTP p50 at concurrency 1 over the in-process p50; the compares/s at each level over the CPU-bound
limit (cores x 1000 / in-process CPU ms per compare), which only means something when the server has the
cores to itself, and over that limit with the client's CPU per compare added to the in-process one (what the
cores could serve while also running this client); and, whatever else runs, the in-process CPU ms per
compare over the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import urlopen

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.photos import full_hd_jpeg
from bench.runnable import RunnableSampler
from tests.assets import asset_path
from tests.service_process import REPO, ServiceProcess

PORTRAITS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
GROUPS = tuple(f"sample{i}.jpg" for i in range(1, 7))
WARM_UP = 4


@dataclass(frozen=True)
class Pair:
    """A photo pair and the multipart body that carries it, built once."""

    kind: str
    origin: bytes
    target: bytes
    body: bytes = field(repr=False)
    content_type: str


def multipart_body(origin: bytes, target: bytes) -> tuple[bytes, str]:
    """The compare form as aiohttp sends it (its own writer), with its Content-Type."""
    form = aiohttp.FormData()
    form.add_field("originFace", origin, filename="origin.jpg", content_type="image/jpeg")
    form.add_field("targetFace", target, filename="target.jpg", content_type="image/jpeg")
    writer = form()
    return asyncio.run(writer.as_bytes()), writer.content_type


def pair(kind: str, origin: bytes, target: bytes) -> Pair:
    return Pair(kind, origin, target, *multipart_body(origin, target))


@dataclass
class Samples:
    """Latencies of the successful compares by pair kind, and the failures by status."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {"portrait": [], "group": []})
    errors: Counter[str] = field(default_factory=Counter)

    def everything(self) -> list[float]:
        return [ms for values in self.ms.values() for ms in values]


def make_pairs(group_every: int) -> list[Pair]:
    """The request cycle: portrait pairs, with a group pair in place of every `group_every`-th (0: none)."""
    portraits = {name: full_hd_jpeg(name) for name in PORTRAITS}
    cycle = [pair("portrait", portraits[a], portraits[b]) for a, b in itertools.combinations(PORTRAITS, 2)]
    if group_every <= 0:
        return cycle
    groups = [pair("group", portraits[PORTRAITS[i % len(PORTRAITS)]], asset_path(name).read_bytes())
              for i, name in enumerate(GROUPS)]
    pairs: list[Pair] = []
    portrait_iter, group_iter = itertools.cycle(cycle), iter(groups)
    for index in range(1, len(groups) * group_every + 1):
        pairs.append(next(group_iter) if index % group_every == 0 else next(portrait_iter))
    return pairs


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))], 2)


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {"n": len(values), "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95),
            "p99_ms": percentile(values, 99)}


async def _post(session: aiohttp.ClientSession, url: str, key: str, pair: Pair) -> int:
    headers = {"x-api-key": key, "Content-Type": pair.content_type}
    async with session.post(url, data=pair.body, headers=headers) as response:
        await response.read()
        return response.status


class PlainClient:
    """One keep-alive connection of the standard library's blocking client, used from one thread at a time:
    no event loop between the socket and the answer, so it adds less of this machine's time than aiohttp's."""

    def __init__(self, url: str, key: str) -> None:
        parts = urlparse(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self._path, self._key = parts.path, key

    def post(self, pair: Pair) -> tuple[int, float]:
        """The status and the milliseconds from sending the request to having read the whole answer."""
        started = time.perf_counter()
        self._connection.request("POST", self._path, body=pair.body,
                                 headers={"x-api-key": self._key, "Content-Type": pair.content_type})
        response = self._connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self._connection.close()


class InProcess:
    """bench/inprocess.py on the same pairs, with `checkout`'s code first on the path; `ask` compares one."""

    def __init__(self, pairs: list[Pair], checkout: Path) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="fc-inprocess-")
        listing = []
        for index, each in enumerate(pairs):
            for side, data in (("origin", each.origin), ("target", each.target)):
                Path(self._folder.name, f"{index}-{side}.jpg").write_bytes(data)
            listing.append({"kind": each.kind, "origin": f"{index}-origin.jpg", "target": f"{index}-target.jpg"})
        Path(self._folder.name, "pairs.json").write_text(json.dumps(listing))
        worker = [sys.executable, str(Path(__file__).with_name("inprocess.py")), self._folder.name]
        self._process = subprocess.Popen(worker, cwd=checkout, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True, env={**os.environ, "PYTHONPATH": str(checkout)})
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError("the in-process worker did not start")
        self.ms: dict[str, list[float]] = {}
        self.cpu_ms: list[float] = []
        self.system_cpu_ms: list[float] = []
        self.minor_faults: list[int] = []

    def ask(self, index: int) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(f"{index}\n")
        self._process.stdin.flush()
        answer = json.loads(self._process.stdout.readline())
        self.ms.setdefault(answer["kind"], []).append(answer["ms"])
        self.cpu_ms.append(answer["cpu_ms"])
        self.system_cpu_ms.append(answer["system_cpu_ms"])
        self.minor_faults.append(answer["minor_faults"])

    def summary(self) -> dict:
        everything = [ms for values in self.ms.values() for ms in values]
        count = len(self.cpu_ms)
        return {**summary(everything), "cpu_ms_per_compare": round(sum(self.cpu_ms) / count, 2),
                "system_cpu_ms_per_compare": round(sum(self.system_cpu_ms) / count, 2),
                "minor_faults_per_compare": round(sum(self.minor_faults) / count, 1),
                "by_kind": {kind: summary(values) for kind, values in self.ms.items()}}

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(60)
        self._folder.cleanup()


async def _worker(session: aiohttp.ClientSession, url: str, key: str, pairs: list[Pair], start: int,
                  deadline: float, budget: list[int], samples: Samples, inprocess: InProcess | None,
                  plain: tuple[PlainClient, Samples] | None = None) -> None:
    """With `plain`, every other request goes through that client into its samples, shifted by one in every other
    cycle of the pairs, so that each client sends each pair as often and both meet the same load."""
    for index in itertools.count(start):
        if time.monotonic() >= deadline or budget[0] <= 0:
            return
        budget[0] -= 1
        current = pairs[index % len(pairs)]
        if inprocess is not None:
            await asyncio.to_thread(inprocess.ask, index % len(pairs))
        if plain is not None and (index + index // len(pairs)) % 2:
            client, into = plain
            try:
                status, ms = await asyncio.to_thread(client.post, current)
            except (OSError, http.client.HTTPException) as exc:
                into.errors[type(exc).__name__] += 1
                continue
        else:
            into = samples
            started = time.perf_counter()
            try:
                status = await _post(session, url, key, current)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                samples.errors[type(exc).__name__] += 1
                continue
            ms = (time.perf_counter() - started) * 1000
        if status == 200:
            into.ms[current.kind].append(ms)
        else:
            into.errors[str(status)] += 1


def client_cpu_seconds() -> float:
    """User + system CPU time of this process (the load generator), its children (the in-process worker) not
    counted."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_pipeline_seconds(base: str) -> tuple[float, float]:
    """The server's pipeline time so far, from its own metrics: seconds spent in `pipeline.compare`
    (the "decode" and "compare" stages) and how many compares that was."""
    with urlopen(base.rstrip("/") + "/metrics", timeout=10) as response:
        text = response.read().decode()
    seconds, count = 0.0, 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "facecompare_stage_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("stage") in ("decode", "compare") and sample.name.endswith("_sum"):
                seconds += sample.value
            if sample.labels.get("stage") == "compare" and sample.name.endswith("_count"):
                count += sample.value
    return seconds, count


def outside_pipeline(samples: Samples, pipeline_ms_mean: float | None) -> dict[str, float]:
    """What the client's mean latency adds to the server's mean pipeline time."""
    everything = samples.everything()
    if not everything or pipeline_ms_mean is None:
        return {}
    return {"outside_pipeline_ms_mean": round(sum(everything) / len(everything) - pipeline_ms_mean, 2)}


async def run_level(base: str, key: str, pairs: list[Pair], concurrency: int, duration: float,
                    max_requests: int, inprocess: InProcess | None = None, pid: int | None = None,
                    sample_runnable: bool = False, plain_client: bool = False) -> dict:
    """One concurrency level: a short warm-up, then `concurrency` clients for `duration` seconds (each HTTP
    compare after one in `inprocess`, when given; with `plain_client`, at concurrency 1, every other request
    sent by `PlainClient`, reported apart as `plain_client`). The server's (`pid`) and the client's
    CPU per request are counted after the warm-up; with `sample_runnable`, its runnable threads too
    (bench/runnable.py)."""
    url = base.rstrip("/") + "/v1/compare"
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    plain = (PlainClient(url, key), Samples()) if plain_client and concurrency == 1 else None
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for pair in pairs[:WARM_UP]:
            await _post(session, url, key, pair)
            if plain is not None:
                await asyncio.to_thread(plain[0].post, pair)
        samples, budget = Samples(), [max_requests]
        server_before, client_before = cpu_seconds(pid), client_cpu_seconds()
        system_before = system_cpu_seconds(pid)
        waits_before, faults_before = voluntary_switches(pid), minor_faults(pid)
        pipeline_before = await asyncio.to_thread(server_pipeline_seconds, base)
        started = time.monotonic()
        sampling = pid is not None and sample_runnable
        with RunnableSampler(pid, len(os.sched_getaffinity(0))) if sampling else nullcontext() as sampler:
            await asyncio.gather(*(_worker(session, url, key, pairs, i * 7, started + duration, budget, samples,
                                           inprocess, plain) for i in range(concurrency)))
        elapsed = time.monotonic() - started
        server_after, client_after = cpu_seconds(pid), client_cpu_seconds()
        system_after = system_cpu_seconds(pid)
        waits_after, faults_after = voluntary_switches(pid), minor_faults(pid)
        pipeline_after = await asyncio.to_thread(server_pipeline_seconds, base)
    everything = samples.everything()
    both = everything + (plain[1].everything() if plain is not None else [])
    requests = max(1, len(both) + sum(samples.errors.values()) + (sum(plain[1].errors.values()) if plain else 0))
    compares = pipeline_after[1] - pipeline_before[1]
    pipeline_ms = round((pipeline_after[0] - pipeline_before[0]) * 1000 / compares, 2) if compares else None
    stats = {**summary(everything), "rps": round(len(both) / elapsed, 2), "errors": dict(samples.errors),
             "by_kind": {kind: summary(values) for kind, values in samples.ms.items() if values},
             "client_cpu_ms_per_compare": round((client_after - client_before) * 1000 / requests, 2),
             "server_pipeline_ms_mean": pipeline_ms, **outside_pipeline(samples, pipeline_ms)}
    if plain is not None:
        plain[0].close()
        lean = plain[1]
        stats["plain_client"] = {**summary(lean.everything()), "errors": dict(lean.errors),
                                 "by_kind": {kind: summary(values) for kind, values in lean.ms.items() if values},
                                 **outside_pipeline(lean, pipeline_ms)}
    if server_before is not None and server_after is not None:
        stats["server_cpu_ms_per_compare"] = round((server_after - server_before) * 1000 / requests, 2)
    if system_before is not None and system_after is not None:
        stats["server_system_cpu_ms_per_compare"] = round((system_after - system_before) * 1000 / requests, 2)
    if waits_before is not None and waits_after is not None:
        stats["server_waits_per_compare"] = round((waits_after - waits_before) / requests, 1)
    if faults_before is not None and faults_after is not None:
        stats["server_minor_faults_per_compare"] = round((faults_after - faults_before) / requests, 1)
    if sampler is not None:
        stats["server_runnable_threads"] = sampler.summary()
    return stats


def pid_listening_on(port: int) -> int | None:
    """The pid owning the loopback socket listening on `port`, from /proc (Linux only)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return int(proc.name)
    return None


def peak_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (the state is the first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of the process so far: what a compare costs, however busy the machine is."""
    if pid is None:
        return None
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def system_cpu_seconds(pid: int | None) -> float | None:
    """The kernel's share of `cpu_seconds`: page faults and system calls."""
    return None if pid is None else int(_stat_fields(pid)[12]) / os.sysconf("SC_CLK_TCK")


def minor_faults(pid: int | None) -> int | None:
    """Pages the process has had the kernel map in so far: memory given back to the system and taken again."""
    return None if pid is None else int(_stat_fields(pid)[7])


def voluntary_switches(pid: int | None) -> int | None:
    """How often the process's threads have gone to sleep so far (each wake-up of a waiting thread is one):
    the hand-offs between threads, which the machine's load does not add to (involuntary switches it would)."""
    if pid is None:
        return None
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("voluntary_ctxt"))
    return total


def p50_ratios(name: str, stats: dict, inprocess: dict) -> dict[str, float]:
    """`name` and `name_<kind>`: a client's HTTP p50 over the in-process p50, overall and per pair kind."""
    if stats["p50_ms"] is None:
        return {}
    result = {name: round(stats["p50_ms"] / inprocess["p50_ms"], 3)}
    for kind, part in stats["by_kind"].items():
        result[f"{name}_{kind}"] = round(part["p50_ms"] / inprocess["by_kind"][kind]["p50_ms"], 3)
    return result


def ratios(levels: dict[str, dict], inprocess: dict) -> dict[str, float]:
    """The service against its own pipeline: HTTP p50 over in-process p50 at concurrency 1 (overall and per
    kind), each level's compares/s over the CPU-bound limit of this machine's cores (`_rps_over_limit`) and
    over that limit with the load generator's measured CPU per compare taken out of the cores
    (`_rps_over_limit_without_client`: cores x 1000 / (in-process + client CPU ms per compare)), and the
    in-process CPU per compare over the server's at each level."""
    cores = len(os.sched_getaffinity(0))
    limit = cores * 1000 / inprocess["cpu_ms_per_compare"]
    result = {"cores": cores, "cpu_bound_limit_per_s": round(limit, 2)}
    single = levels.get("1")
    if single:
        result |= p50_ratios("c1_p50_http_over_inprocess", single, inprocess)
        if "plain_client" in single:
            result |= p50_ratios("c1_p50_http_over_inprocess_plain_client", single["plain_client"], inprocess)
    for level, stats in levels.items():
        result[f"c{level}_rps_over_limit"] = round(stats["rps"] / limit, 3)
        client_limit = cores * 1000 / (inprocess["cpu_ms_per_compare"] + stats["client_cpu_ms_per_compare"])
        result[f"c{level}_rps_over_limit_without_client"] = round(stats["rps"] / client_limit, 3)
        if stats.get("server_cpu_ms_per_compare"):
            result[f"c{level}_cpu_efficiency"] = round(inprocess["cpu_ms_per_compare"]
                                                       / stats["server_cpu_ms_per_compare"], 3)
    return result


def run(base: str, key: str, pid: int | None, args: argparse.Namespace) -> dict:
    pairs = make_pairs(args.group_every)
    alongside = InProcess(pairs, args.checkout or REPO) if args.inprocess and 1 in args.concurrency else None
    levels = {}
    for concurrency in args.concurrency:
        levels[str(concurrency)] = asyncio.run(run_level(base, key, pairs, concurrency, args.duration,
                                                         args.max_requests, alongside if concurrency == 1 else None,
                                                         pid, args.sample_runnable, args.plain_client))
    result = {"concurrency": levels, "peak_rss_mb": peak_rss_mb(pid), "load_average": os.getloadavg()}
    if alongside is not None:
        alongside.close()
        inprocess = alongside.summary()
        result |= {"inprocess": inprocess, "ratios": ratios(levels, inprocess)}
    return result


@contextmanager
def own_server(checkout: Path | None, server_option: list[str], prefix: str) -> Iterator[tuple[ServiceProcess, str]]:
    """`facecompare serve` on loopback (`checkout`'s code, or this one's), a fresh data directory, the settings
    given as NAME=JSON, until ready: the server and the key it printed."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = ServiceProcess(Path(tmp) / "data", repo=checkout or REPO,
                                **{k: json.loads(v) for k, v in server_settings(server_option).items()})
        with server:
            server.wait_ready()
            if server.printed_key is None:
                raise RuntimeError("the server printed no key")
            yield server, server.printed_key


def server_settings(server_option: list[str]) -> dict[str, str]:
    """`--server-option NAME=JSON` by name, as given."""
    return dict(option.split("=", 1) for option in server_option)


def _own_server(args: argparse.Namespace) -> dict:
    """Start `facecompare serve` and time it to ready."""
    started = time.monotonic()
    with own_server(args.checkout, args.server_option, "fc-latency-") as (server, key):
        ready_s = round(time.monotonic() - started, 2)
        result = run(server.url, key, pid_listening_on(server.port), args)
    return {**result, "ready_s": ready_s, "server_options": server_settings(args.server_option)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running service (default: start one on 127.0.0.1)")
    parser.add_argument("--api-key", default=os.environ.get("FACECOMPARE_API_KEY"))
    parser.add_argument("--pid", type=int, help="the server's pid, for its peak RSS")
    parser.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per concurrency level")
    parser.add_argument("--max-requests", type=int, default=20000, help="requests per level at most")
    parser.add_argument("--group-every", type=int, default=4, help="every Nth request uses a group photo (0: never)")
    parser.add_argument("--server-option", action="append", default=[], metavar="NAME=JSON",
                        help="a setting for the server this starts, e.g. max_wait_ms=4")
    parser.add_argument("--checkout", type=Path, help="serve the code of this checkout (e.g. a worktree of main),"
                                                     " to compare before and after")
    parser.add_argument("--no-inprocess", dest="inprocess", action="store_false",
                        help="no in-process compares beside the HTTP ones at concurrency 1")
    parser.add_argument("--no-plain-client", dest="plain_client", action="store_false",
                        help="at concurrency 1, aiohttp's client alone (none sent by the plain client)")
    parser.add_argument("--sample-runnable", action="store_true",
                        help="sample the server's runnable threads through each level (bench/runnable.py)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.url:
        if not args.api_key:
            parser.error("--api-key or $FACECOMPARE_API_KEY is needed with --url")
        pid = args.pid or pid_listening_on(urlparse(args.url).port or 80)
        result = run(args.url, args.api_key, pid, args)
    else:
        result = _own_server(args)
    if args.json:
        print(json.dumps(result))
        return
    for level, stats in result["concurrency"].items():
        print(f"concurrency {level:>3}: p50 {stats['p50_ms']} ms  p95 {stats['p95_ms']} ms  p99 {stats['p99_ms']} ms"
              f"  {stats['rps']} compares/s  errors {stats['errors']}"
              f"  server CPU {stats.get('server_cpu_ms_per_compare')} ms/compare"
              f"  client CPU {stats['client_cpu_ms_per_compare']} ms/compare"
              f"  outside the pipeline {stats.get('outside_pipeline_ms_mean')} ms (mean)")
        if "plain_client" in stats:
            plain = stats["plain_client"]
            print(f"    plain client: p50 {plain['p50_ms']} ms  p95 {plain['p95_ms']} ms  errors {plain['errors']}"
                  f"  outside the pipeline {plain.get('outside_pipeline_ms_mean')} ms (mean)")
        for kind, part in stats["by_kind"].items():
            print(f"    {kind:8s} n={part['n']}  p50 {part['p50_ms']}  p95 {part['p95_ms']}  p99 {part['p99_ms']}")
    print(f"peak RSS {result['peak_rss_mb']} MB" + (f", ready in {result['ready_s']} s" if "ready_s" in result else ""))
    if "inprocess" in result:
        inprocess = result["inprocess"]
        print(f"in process: p50 {inprocess['p50_ms']} ms, CPU {inprocess['cpu_ms_per_compare']} ms/compare;"
              f" ratios {result['ratios']}")


if __name__ == "__main__":
    main()
