"""Scale-out: the full IDC corpus on the Elasticsearch/OpenSearch backend.

python -m bench scale   ingest the harvested IDC snapshot (`python -m bench harvest`
                        makes it) into osmem-server, or into the cluster named by
                        HUB_TEST_ELASTICSEARCH_URL; report the ingest rate; compare the
                        counts of the reference cohorts with the embedded index of the
                        same data directory; page both backends to page 2,000 and beyond;
                        then kill a re-harvest half-way (SIGKILL to the process that is
                        bulk-loading the new index) and check that queries still answer
                        from the previous copy with unchanged counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hub.index.base import CohortQuery
from hub.index.elastic.backend import SERVED_TTL_S, ElasticIndex
from hub.index.elastic.settings import ElasticSettings
from hub.index.embedded.backend import EmbeddedIndex
from hub.index.protocol import CohortView
from hub.index.snapshots import Snapshot, SnapshotStore
from schema.filters import parse_filter
from tests.hub.test_reference import COHORTS

PREFIX = "imaging-hub-bench"
PAGE = int(os.environ.get("BENCH_PAGE_SIZE", "10"))
DEEP_PAGES = int(os.environ.get("BENCH_DEEP_PAGES", "2010"))
DEEP_COHORT = {"=": {"body_part": "PROSTATE"}}  # 23,008 series: 2,301 pages of 10
"""Page 2,010 of 10 is series 20,091-20,100, past the 10,000-row window of from/size.
Not a bigger cohort: osmem evaluates every match of the cohort for each page (no index
sort, no early termination), ~0.3 s a page for 23,000 series on this machine, so 2,000
pages of MR (128,143 series) would take hours; Elasticsearch pages in a few ms."""
MAX_OSMEM_GB = float(os.environ.get("BENCH_OSMEM_MAX_GB", "16"))
MIN_AVAILABLE_GB = float(os.environ.get("BENCH_MIN_AVAILABLE_GB", "2.5"))
KILL_AT = 0.5  # the re-harvest is killed when this share of the series has been sent...
KILL_MARGIN_GB = 1.5  # ...or earlier, when the machine gets this close to MIN_AVAILABLE_GB
"""osmem keeps ~11 KB a series in memory (12 GB for IDC): the watchdog stops it before it
passes MAX_OSMEM_GB or leaves the machine less than MIN_AVAILABLE_GB, rather than let the
kernel's OOM killer choose (other work shares the machine)."""


@contextlib.contextmanager
def _cluster() -> Iterator[tuple[str, str]]:
    """(url, what) of the cluster to use: the given one, or an osmem-server of our own."""
    url = os.environ.get("HUB_TEST_ELASTICSEARCH_URL")
    if url:
        yield url, "HUB_TEST_ELASTICSEARCH_URL"
        return
    from osmem_server import OsmemServer

    gogc = os.environ.get("GOGC")
    os.environ["GOGC"] = "10"  # the server's Go heap: collect early, hold less garbage
    try:
        server = OsmemServer.start(japanese=False)
    finally:
        if gogc is None:
            del os.environ["GOGC"]
        else:
            os.environ["GOGC"] = gogc
    watchdog = _Watchdog(server.pid, server.process.kill)
    try:
        yield server.url, f"osmem-server {server.version}"
    finally:
        watchdog.stop()
        server.close()
        print(f"  osmem-server peak RSS {watchdog.peak_gb:.1f} GB", flush=True)
        if watchdog.tripped:
            raise SystemExit(
                f"osmem-server was stopped at {watchdog.peak_gb:.1f} GB RSS: over "
                f"{MAX_OSMEM_GB} GB, or the machine had under {MIN_AVAILABLE_GB} GB available"
            )


class _Watchdog(threading.Thread):
    """Kills the server when its resident memory passes MAX_OSMEM_GB, or the machine's
    available memory falls under MIN_AVAILABLE_GB."""

    def __init__(self, pid: int, kill: Any) -> None:
        super().__init__(daemon=True, name="osmem-watchdog")
        self.pid, self.kill = pid, kill
        self.peak_gb, self.tripped = 0.0, False
        self._stop_event = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._stop_event.wait(1.0):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            self.peak_gb = max(self.peak_gb, _kib(status, "VmRSS") / 2**20)
            available = _kib(Path("/proc/meminfo").read_text(), "MemAvailable") / 2**20
            if self.peak_gb > MAX_OSMEM_GB or available < MIN_AVAILABLE_GB:
                self.tripped = True
                self.kill()
                return

    def stop(self) -> None:
        self._stop_event.set()


def _kib(text: str, key: str) -> int:
    """A `Key:  123 kB` line of a /proc file, in KiB (0 when absent)."""
    return next((int(x.split()[1]) for x in text.splitlines() if x.startswith(key + ":")), 0)


def _settings(url: str) -> ElasticSettings:
    return ElasticSettings(
        url=url, index_prefix=PREFIX, replicas=0, bulk_chunk_docs=2_000,
        bulk_max_inflight=4, request_timeout_s=300,
    )  # fmt: skip


def bench_scale(data_dir: Path) -> dict[str, Any]:
    snapshot = SnapshotStore(data_dir).get("idc")
    if snapshot is None or not (data_dir / "index" / "CURRENT").is_file():
        raise SystemExit(f"no IDC snapshot and index in {data_dir}; run `python -m bench harvest`")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        # a private copy: another `bench harvest` may replace the data directory meanwhile
        copy = Path(tmp) / "snapshot.parquet"
        shutil.copyfile(snapshot.path, copy)
        snap = Snapshot("idc", copy, snapshot.series, snapshot.harvested_at, None)
        with _cluster() as (url, what):
            elastic = ElasticIndex(_settings(url))
            out: dict[str, Any] = {"cluster": what}
            try:
                out.update(_run(elastic, EmbeddedIndex(data_dir), snap, url))
            finally:
                elastic.drop()  # nothing of the benchmark stays on a real cluster
                elastic.close()
        return out


def _run(
    elastic: ElasticIndex, embedded: EmbeddedIndex, snap: Snapshot, url: str
) -> dict[str, Any]:
    done = [0]
    started = time.perf_counter()

    def progress(n: int) -> None:
        done[0] += n
        if done[0] // 100_000 != (done[0] - n) // 100_000:
            rate = done[0] / (time.perf_counter() - started)
            print(f"  ingested {done[0]:,} series ({rate:,.0f}/s)", flush=True)

    elastic.drop()  # a fresh ingest is what is measured
    asyncio.run(elastic.publish([snap], {"idc": 100}, progress))
    ingest_s = time.perf_counter() - started
    out: dict[str, Any] = {
        "series": snap.series,
        "ingest_s": round(ingest_s, 1),
        "ingest_docs_per_s": round(snap.series / ingest_s),
        "served_series": elastic.cohort(CohortQuery(parse_filter(None))).counts().series,
    }
    print(f"  ingest: {out}", flush=True)
    out["cohorts"] = []
    for cid, f, _ in COHORTS:
        out["cohorts"].append(_compare(elastic, embedded, cid, f))
        print(f"  {out['cohorts'][-1]}", flush=True)
    out["cohorts_identical"] = all(c["identical"] for c in out["cohorts"])
    before = {c["cohort"]: _counts(c) for c in out["cohorts"]}
    try:
        out["killed_harvest"] = _killed_harvest(elastic, snap, url, before)
    except Exception as exc:  # the figures above stand; say what went wrong here
        out["killed_harvest"] = {"error": f"{type(exc).__name__}: {exc}"}
    deep = CohortQuery(parse_filter(DEEP_COHORT))
    out["deep_paging"] = {
        "cohort": DEEP_COHORT,
        "embedded": _deep(embedded.cohort(deep)),
        "elastic": _deep(elastic.cohort(deep)),
    }
    same = out["deep_paging"]["embedded"].pop("uids") == out["deep_paging"]["elastic"].pop("uids")
    out["deep_paging"]["same_series_on_last_page"] = same
    print(f"  deep paging: {out['deep_paging']}", flush=True)
    return out


def _counts(c: dict[str, Any]) -> list[int]:
    return [c["series"], c["studies"], c["patients"]]


def _killed_harvest(
    elastic: ElasticIndex,
    snap: Snapshot,
    url: str,
    before: dict[str, list[int]],
    cohorts: list[tuple[str, Any, str]] = COHORTS,
) -> dict[str, Any]:
    """Re-harvest the corpus in a child process and SIGKILL it once KILL_AT of the series
    are sent (no cleanup can run); then every reference cohort must count as before,
    from the same served index, and the half-built index must be left unserved."""
    served = [i.name for i in elastic.served().indices]
    target = int(snap.series * KILL_AT)
    cmd = [sys.executable, "-m", "bench.scale", url, str(snap.path), str(snap.series)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    sent, reason = 0, "the re-harvest ended before it could be killed"
    t = time.perf_counter()
    for line in child.stdout:
        if not line.startswith("sent "):
            continue
        sent = int(line.split()[1])
        available = _kib(Path("/proc/meminfo").read_text(), "MemAvailable") / 2**20
        if sent >= target:
            reason = f"{KILL_AT:.0%} of the series sent"
        elif available < MIN_AVAILABLE_GB + KILL_MARGIN_GB:
            reason = f"the machine had {available:.1f} GB available"
        else:
            continue
        child.send_signal(signal.SIGKILL)  # mid-bulk: requests are in flight
        break
    code = child.wait()
    killed_after_s = time.perf_counter() - t
    print(f"  re-harvest killed after {sent:,} series ({reason}), exit {code}", flush=True)
    time.sleep(SERVED_TTL_S)  # what is served is looked up again, not remembered
    served_after = [i.name for i in elastic.served().indices]
    left = _leftovers(elastic, set(served))
    after: dict[str, list[int]] = {}
    for cid, f, _ in cohorts:
        counts = elastic.cohort(CohortQuery(parse_filter(f))).counts()
        after[cid] = [counts.series, counts.studies, counts.patients]
    result = {
        "killed_after_series": sent,
        "killed_after_s": round(killed_after_s, 1),
        "kill_reason": reason,
        "child_exit_code": code,
        "served_before": served,
        "served_after": served_after,
        "half_built_index": left,
        "cohort_counts_unchanged": after == before,
        "changed_cohorts": sorted(c for c in before if after.get(c) != before[c]),
    }
    print(f"  killed harvest: {result}", flush=True)
    return result


def _leftovers(elastic: ElasticIndex, served: set[str]) -> list[dict[str, Any]]:
    """Indices the killed harvest left (documents in each, aliases), then deleted: the
    next real publish deletes them first anyway, and they hold memory."""

    async def find() -> list[dict[str, Any]]:
        client = await elastic.client()
        found = []
        for info in await elastic.layout.indices(client):
            if info.kind != "harvest" or info.name in served:
                continue
            await client.indices.refresh(index=info.name)
            docs = int((await client.count(index=info.name))["count"])
            found.append({"index": info.name, "documents": docs, "aliases": sorted(info.aliases)})
            await client.indices.delete(index=info.name)
        return found

    return elastic.runner.run(find())


def _child_harvest(url: str, path: str, series: int) -> None:
    """The process that is killed: publishes `path` as a newer IDC snapshot, printing
    `sent N` after every bulk answer."""
    stamp = dt.datetime.now(dt.UTC).isoformat()
    snap = Snapshot("idc", Path(path), series, stamp, None)
    elastic = ElasticIndex(_settings(url))
    sent = [0]

    def progress(n: int) -> None:
        sent[0] += n
        print(f"sent {sent[0]}", flush=True)

    asyncio.run(elastic.publish([snap], {"idc": 100}, progress))
    print("published", flush=True)


def _compare(elastic: ElasticIndex, embedded: EmbeddedIndex, cid: str, f: Any) -> dict[str, Any]:
    query = CohortQuery(parse_filter(f))
    expected = embedded.cohort(query).counts()
    t = time.perf_counter()
    got = elastic.cohort(query).counts()
    ms = (time.perf_counter() - t) * 1000
    return {
        "cohort": cid,
        "series": got.series,
        "studies": got.studies,
        "patients": got.patients,
        "identical": got == expected,
        "elastic_counts_ms": round(ms),
    }


def _deep(view: CohortView) -> dict[str, Any]:
    """Follow `end_cursor` from page 1 to page DEEP_PAGES, PAGE series a page."""
    after = None
    t = time.perf_counter()
    page = view.series(PAGE, None, [])
    for number in range(2, DEEP_PAGES + 1):
        after = page.end_cursor
        page = view.series(PAGE, after, [])
        if number % 500 == 0:
            print(f"  page {number}: {time.perf_counter() - t:.1f} s", flush=True)
    total_s = time.perf_counter() - t
    t = time.perf_counter()
    again = view.series(PAGE, after, [])  # the last page once more, on its own
    last_ms = (time.perf_counter() - t) * 1000
    return {
        "pages": DEEP_PAGES,
        "page_size": PAGE,
        "total_s": round(total_s, 1),
        "ms_per_page": round(total_s * 1000 / DEEP_PAGES, 1),
        "last_page_ms": round(last_ms, 1),
        "first_series_on_last_page": (DEEP_PAGES - 1) * PAGE + 1,
        "uids": [n["series_uid"] for n in again.nodes],
    }


if __name__ == "__main__":  # the re-harvest that `_killed_harvest` kills
    _child_harvest(sys.argv[1], sys.argv[2], int(sys.argv[3]))
