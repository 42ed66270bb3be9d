"""The hub's services: sources, harvests, cohort questions and plans.

API resolvers and CLI commands stay thin over this module. Everything here works
on canonical names and the filter AST; nothing here knows about HTTP or GraphQL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.registry import discover_adapters
from adapters.spi import Adapter, AdapterError, Translation
from hub.config import ConfigError, HubConfig
from hub.federation.planner import Planner, SourceStatus, with_text
from hub.federation.route import HARVESTED, Route, RouteKind, mode_problem, route
from hub.federation.status import SourceState
from hub.index.base import CohortQuery, SourceSnapshotInfo
from hub.index.open import open_index
from hub.index.protocol import CohortView, IndexBackend
from hub.index.snapshots import SnapshotStore
from hub.observability import metrics, tracing
from hub.observability.context import current_request_id
from hub.registry.store import DisabledSource, merge_registry
from hub.security.access import AccessPlan, Granularity, plan_access
from hub.security.disclosure import Disclosure, open_cohort
from hub.security.identity import ANONYMOUS, Caller
from hub.source_info import SourceInfo
from schema.errors import CallerError, internal_message
from schema.filters import MATCH_ALL, MAX_STRING, Node, parse_filter, to_json

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], Any]
"""progress(stage, rows_done_increment, total) — stage is 'fetch:<source>' or 'index'."""


@dataclass
class SourcePlan:
    source: str
    route: str
    native: Any
    residual: dict[str, Any] | None
    description: str


@dataclass
class SourceResult:
    source: str
    status: SourceState
    count: int | None
    latency_ms: float
    message: str
    granularity: str = Granularity.RECORD.value
    suppressed: bool = False


@dataclass
class Cohort:
    """A cohort answer: the index view plus per-source status.

    `view` holds only the series the caller may see as records (record-level output
    reads it); counts, facets, histograms and per-source counts are released through
    `disclosure` (hub/security/disclosure.py)."""

    view: CohortView
    query: CohortQuery
    disclosure: Disclosure
    live: dict[str, SourceStatus] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)


class _HarvestProgress:
    """The `progress` callback of one source's harvest, also kept in the metrics
    (`hub_harvest_*`: rows so far, expected, running, outcome, last success)."""

    def __init__(self, source: str, total: int | None, progress: Progress | None) -> None:
        self.source, self.total, self.progress = source, total, progress
        self.rows, self.gauge = 0, metrics.HARVEST_ROWS.labels(source)
        self.gauge.set(0)
        metrics.HARVEST_EXPECTED.labels(source).set(total if total is not None else float("nan"))
        metrics.HARVEST_RUNNING.labels(source).set(1)

    def __call__(self, rows: int) -> None:
        self.rows += rows
        self.gauge.set(self.rows)  # `set`: multiprocess mode takes the latest value
        if self.progress is not None:
            self.progress(f"fetch:{self.source}", rows, self.total)

    def finished(self, ok: bool) -> None:
        metrics.HARVEST_RUNNING.labels(self.source).set(0)
        metrics.HARVESTS.labels(self.source, "ok" if ok else "error").inc()
        if ok:
            metrics.HARVEST_LAST_SUCCESS.labels(self.source).set_to_current_time()


class Hub:
    """Holds the configured adapters, the snapshot store and the index."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self.data_dir = config.hub.data_dir
        self.snapshots = SnapshotStore(self.data_dir)
        self.index: IndexBackend = open_index(config)
        available = discover_adapters()
        self.adapters: dict[str, Adapter] = {}
        merged = merge_registry(config, available)  # + sources registered at runtime
        self.disabled: dict[str, DisabledSource] = merged.disabled
        for name, settings in merged.enabled.items():
            cls = available.get(settings.adapter)
            if cls is None:
                raise ConfigError(
                    f"[sources.{name}] uses adapter {settings.adapter!r}, which is not installed; "
                    f"installed adapters: {', '.join(sorted(available)) or 'none'}"
                )
            adapter = cls(settings)
            problem = mode_problem(settings, adapter.capabilities)
            if problem is not None:
                raise ConfigError(problem)
            self.adapters[name] = adapter
        self.planner = Planner(self.adapters, self.index, config.hub.query_deadline_s)
        if config.hub.tracing and not tracing.enabled():
            tracing.enable()
        if self.planner.live:
            threading.Thread(target=self.index.warm_live, daemon=True, name="warm").start()

    # --- cohort questions --------------------------------------------------------

    @staticmethod
    def parse(filter_json: Any, text: str | None) -> CohortQuery:
        node: Node = parse_filter(filter_json)
        if text is not None and len(text) > MAX_STRING:
            raise CallerError(f"text must be at most {MAX_STRING} characters")
        return CohortQuery(node, text or None)

    def cohort(self, filter_json: Any, text: str | None, caller: Caller = ANONYMOUS) -> Cohort:
        live_sources = len(self.planner.live)
        with tracing.cohort_span(
            request_id=current_request_id(), live_sources=live_sources
        ) as span:
            query = self.parse(filter_json, text)
            live = self.planner.run(self.planner.refresh(query)) if self.planner.live else {}
            plan = self.access_plan(caller)
            view, disclosure = open_cohort(self.index, query, plan, self.config.privacy.min_cell)
            if span is not None:
                failed = sorted(n for n, s in live.items() if not s.status.answered)
                tracing.set_attributes(span, failed_sources=",".join(failed) or None)
            return Cohort(view, query, disclosure, live)  # index latency counts from here

    def access_plan(self, caller: Caller = ANONYMOUS) -> AccessPlan:
        """Which granularity `caller` gets from each source (hub/security/access.py)."""
        levels = {name: a.settings.access for name, a in self.adapters.items()}
        return plan_access(levels, caller, (s.source for s in self.index.snapshots()))

    def routes(self, node: Node = MATCH_ALL) -> dict[str, Route]:
        """Every source's route for `node`, disabled ones included (hub/federation/route.py):
        what the planner asks, `explain` shows, `bySource` and `sources` report."""
        harvested = self._harvested()
        routes = {n: self._route(a, node, harvested)[0] for n, a in self.adapters.items()}
        return routes | self._disabled_routes(node)

    def _route(
        self, adapter: Adapter, node: Node, harvested: dict[str, SourceSnapshotInfo]
    ) -> tuple[Route, Translation | None]:
        """The route, and for a source that is asked the translation it is asked with."""
        if self.planner.live.get(adapter.name) is adapter:
            return self.planner.route_of(adapter, node)
        settings, capabilities = adapter.settings, adapter.capabilities
        return route(settings, capabilities, node, snapshot=harvested.get(adapter.name)), None

    def _disabled_routes(self, node: Node) -> dict[str, Route]:
        return {
            n: route(d.settings, None, node, disabled=d.reason) for n, d in self.disabled.items()
        }

    def _harvested(self) -> dict[str, SourceSnapshotInfo]:
        return {s.source: s for s in self.index.snapshots()}

    def by_source(self, cohort: Cohort) -> list[SourceResult]:
        counts = cohort.disclosure.by_source(list(self.adapters))
        latency = (time.perf_counter() - cohort.started) * 1000
        node, harvested = with_text(cohort.query), self._harvested()
        results = []
        for name, adapter in self.adapters.items():
            grain = cohort.disclosure.plan.granularity_of(name)
            status = cohort.live.get(name)
            if status is not None:
                cell = counts[name]
                answered = status.status.answered
                count = cell.value if answered else None
                message = status.message  # a live answer's message states its exact count
                if grain is Granularity.COUNT and status.status is not SourceState.SKIPPED:
                    message = f"answered live ({status.status}); counts only"
                results.append(
                    SourceResult(
                        name,
                        status.status,
                        count,
                        status.latency_ms,
                        message,
                        grain.value,
                        answered and cell.suppressed,
                    )
                )
                continue
            way, _ = self._route(adapter, node, harvested)
            if way.kind is not RouteKind.INDEX:  # not asked: say why
                state, message = way.state, way.message
                if state is None:  # a live source that joined after the question was asked
                    state, message = SourceState.SKIPPED, f"{name} was not asked this question"
                results.append(SourceResult(name, state, None, 0.0, message, grain.value))
                continue
            cell = counts[name]
            results.append(
                SourceResult(
                    name,
                    SourceState.OK,
                    cell.value,
                    round(latency, 2),
                    way.message,
                    grain.value,
                    cell.suppressed,
                )
            )
        for name, way in self._disabled_routes(node).items():  # registry: skipped, saying so
            grain = cohort.disclosure.plan.granularity_of(name)
            results.append(
                SourceResult(name, SourceState.DISABLED, None, 0.0, way.message, grain.value)
            )
        return results

    def explain(self, filter_json: Any, text: str | None) -> list[SourcePlan]:
        query = self.parse(filter_json, text)
        plans = []
        node, harvested = with_text(query), self._harvested()
        routes = {n: self._route(a, node, harvested) for n, a in self.adapters.items()}
        routes |= {n: (way, None) for n, way in self._disabled_routes(node).items()}
        for name, (way, translation) in routes.items():
            if translation is None and way.kind in (RouteKind.INDEX, RouteKind.NOT_HARVESTED):
                translation = self._translated(name, node)  # what a harvest answers
            if translation is None:  # not asked: nothing would be sent
                plans.append(SourcePlan(name, way.kind.value, None, None, way.message))
                continue
            residual = translation.residual
            plans.append(
                SourcePlan(
                    source=name,
                    route=way.kind.value,
                    native=translation.native,
                    residual=to_json(residual) if residual is not None else None,
                    description=translation.description,
                )
            )
        return plans

    def _translated(self, name: str, node: Node) -> Translation | None:
        """The adapter's translation for `explain`; None (logged) when its translate fails,
        since an adapter's bug is not the caller's to read."""
        try:
            return self.adapters[name].translate(node)
        except Exception:
            log.exception("explain: translate of %s failed", name)
            return None

    # --- sources and harvests ----------------------------------------------------

    def sources(self) -> list[SourceInfo]:
        snaps: dict[str, SourceSnapshotInfo] = {s.source: s for s in self.index.snapshots()}
        routes = self.routes()  # with no filter: how each is served
        out = []
        for name, adapter in self.adapters.items():
            s = adapter.settings
            snap = snaps.get(name)
            caps = adapter.capabilities
            out.append(
                SourceInfo(
                    name=name,
                    adapter=s.adapter,
                    mode=s.mode,
                    access=s.access,
                    status="ready" if snap else "not harvested",
                    message=f"{snap.series:,} series in the index" if snap else "no harvest yet",
                    capabilities={
                        "harvest": caps.harvest,
                        "liveSearch": caps.live_search,
                        "paging": caps.paging.value,
                        "textSearch": caps.text_search,
                        "maxPageSize": caps.max_page_size,
                        "pushdown": caps.graded(),  # field -> operator -> exact | partial
                    },
                    series=snap.series if snap else None,
                    harvested_at=snap.harvested_at if snap else None,
                    data_version=snap.data_version if snap else None,
                    route=routes[name].kind.value,
                )
            )
        out += [
            SourceInfo(n, d.settings.adapter, d.settings.mode, d.settings.access, "disabled",
                       d.reason, {}, route=routes[n].kind.value)
            for n, d in self.disabled.items()
        ]  # fmt: skip
        return out

    def harvestable(self) -> list[str]:
        """Sources the hub keeps a copy of: routed to the index (harvested or not yet).
        Decided without opening the index: a harvest may be about to replace it."""
        return [
            n
            for n, a in self.adapters.items()
            if route(a.settings, a.capabilities, MATCH_ALL).kind in HARVESTED
        ]

    async def harvest(
        self, names: list[str] | None = None, progress: Progress | None = None
    ) -> None:
        """Harvest sources into snapshots, then publish the last good snapshots of every
        source to the index (`IndexBackend.publish`).

        A source that fails keeps its previous snapshot; the index is still brought up
        to date with every last good snapshot, and the error is raised after (an
        `AdapterError`; whatever else an adapter raised is logged and named generically).
        """
        names = names or self.harvestable()
        unknown = [n for n in names if n not in self.adapters]
        if unknown:
            raise ConfigError(f"unknown source(s) {unknown}; configured: {list(self.adapters)}")
        failures: list[str] = []
        for name in names:
            adapter = self.adapters[name]
            total = adapter.estimated_total()
            step = _HarvestProgress(name, total, progress)
            try:
                await self.snapshots.write(name, adapter.harvest(), adapter.data_version(), step)
            except AdapterError as exc:
                log.error("harvest of %s failed: %s", name, exc)
                failures.append(f"{name}: {exc}")
                step.finished(ok=False)
            except Exception:  # a bug in the adapter: logged in full, reported generically
                log.exception("harvest of %s failed unexpectedly", name)
                rid = current_request_id()
                failures.append(internal_message(rid, f"{name}: internal error"))
                step.finished(ok=False)
            except BaseException:
                step.finished(ok=False)
                raise
            else:
                step.finished(ok=True)
        snapshots = [s for s in self.snapshots.all() if s.source in self.adapters]
        rows = sum(s.series for s in snapshots)
        step2 = (lambda n: progress("index", n, rows)) if progress else None
        priorities = {n: a.settings.priority for n, a in self.adapters.items()}
        await self.index.publish(snapshots, priorities, step2)
        if failures:
            raise AdapterError("harvest failed for " + "; ".join(failures))

    async def aclose(self) -> None:
        for adapter in self.adapters.values():  # on the loop their clients belong to
            await self.planner.run_async(adapter.aclose())
        self.planner.close()
        self.index.close()
