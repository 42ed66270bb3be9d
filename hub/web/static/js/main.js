/**
 * The cohort builder: wires controls to the cohort state, the state to the URL, and the
 * URL to one GraphQL request whose answer redraws every panel.
 *
 * Each change aborts the request still in flight (AbortController) and bumps a sequence
 * number, so a slow stale answer can never overwrite a newer one. When an answer has been
 * drawn, `<body data-state="ready" data-seq="N">` is set and a `cohort:rendered` event
 * fires: tests and the benchmark wait on those.
 * @module main
 */

import { fetchCohort, GraphQLFailure } from "./api.js";
import { debounce, keepingFocus } from "./dom.js";
import { renderExports } from "./exports.js";
import { renderFacets, setupFacets } from "./facets.js";
import { buildFilter } from "./filter.js";
import { countElement, formatCount } from "./format.js";
import { renderHistogram } from "./histogram.js";
import { renderSources, sourceProblems } from "./sources.js";
import {
  emptyState, parseAge, stateFromURL, stateToURL, toggleFacet, withChange,
} from "./state.js";
import { nextSort, renderPager, renderTable } from "./table.js";

/** Pause in typing before the free text is sent, in ms. */
const TEXT_DEBOUNCE_MS = 300;

/** @param {string} id @returns {any} */
const byId = (id) => document.getElementById(id);

const els = {
  text: /** @type {HTMLInputElement} */ (byId("text")),
  form: /** @type {HTMLFormElement} */ (byId("search-form")),
  clear: byId("clear-all"),
  banner: byId("banner"),
  facets: byId("facets"),
  histogram: byId("histogram"),
  ageMin: /** @type {HTMLInputElement} */ (byId("age-min")),
  ageMax: /** @type {HTMLInputElement} */ (byId("age-max")),
  ageClear: byId("age-clear"),
  dateFrom: /** @type {HTMLInputElement} */ (byId("date-from")),
  dateTo: /** @type {HTMLInputElement} */ (byId("date-to")),
  dateClear: byId("date-clear"),
  results: byId("results"),
  counts: byId("counts"),
  announce: byId("announce"),
  sources: /** @type {HTMLTableElement} */ (byId("sources")).tBodies[0],
  exports: byId("exports"),
  filterJson: byId("filter-json"),
  table: /** @type {HTMLTableElement} */ (byId("series")),
  pager: { prev: byId("prev-page"), next: byId("next-page"), status: byId("page-status") },
};

/** @type {import("./state.js").CohortState} */
let state = stateFromURL(location.search);
/** @type {import("./api.js").CohortAnswer|null} */
let answer = null;
/** @type {Array<{name: string, adapter: string}>|null} repositories, once known */
let sources = null;
/** @type {AbortController|null} */
let inFlight = null;
let seq = 0;

/**
 * Make `next` the cohort: record it in the URL (a new history entry unless `replace`),
 * bring the inputs in line and ask the hub.
 * @param {import("./state.js").CohortState} next
 * @param {{replace?: boolean}} [options]
 */
function commit(next, { replace = false } = {}) {
  state = next;
  const url = location.pathname + stateToURL(state);
  if (url === location.pathname + location.search) replace = true;
  history[replace ? "replaceState" : "pushState"](null, "", url);
  syncInputs();
  refresh();
}

/** Show the state in the form controls, except the one being typed in. */
function syncInputs() {
  /** @type {Array<[HTMLInputElement, string]>} */
  const pairs = [
    [els.text, state.text], [els.ageMin, state.ageMin?.toString() ?? ""],
    [els.ageMax, state.ageMax?.toString() ?? ""], [els.dateFrom, state.dateFrom],
    [els.dateTo, state.dateTo],
  ];
  for (const [input, value] of pairs) {
    if (input !== document.activeElement && input.value !== value) input.value = value;
  }
}

/** Ask the hub about the current cohort and draw the answer. */
async function refresh() {
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  const mine = ++seq;
  document.body.dataset.state = "loading";
  els.results.setAttribute("aria-busy", "true");
  renderExports(els.exports, state, sources);
  els.filterJson.textContent = JSON.stringify(
    { filter: buildFilter(state), text: state.text || null }, null, 2);
  try {
    const result = await fetchCohort(state, controller.signal, sources === null);
    if (mine !== seq) return;
    answer = result;
    if (result.sources) {
      sources = result.sources;
      renderExports(els.exports, state, sources);
    }
    draw();
    document.body.dataset.state = "ready";
  } catch (error) {
    if (mine !== seq || controller.signal.aborted) return;
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof GraphQLFailure && state.pages.length && /cursor/.test(message)) {
      commit(withChange(state, () => {}), { replace: true }); // stale page link: page 1
      return;
    }
    showBanner([`The hub could not answer this cohort question: ${message}`]);
    document.body.dataset.state = "error";
  }
  els.results.removeAttribute("aria-busy");
  document.body.dataset.seq = String(mine);
  document.dispatchEvent(new CustomEvent("cohort:rendered", { detail: { seq: mine } }));
}

/** Redraw every panel from the last answer, keeping keyboard focus where it was. */
function draw() {
  if (!answer) return;
  const { counts, facets, histogram, series, bySource } = answer;
  keepingFocus(() => {
    for (const dd of els.counts.querySelectorAll("dd")) {
      dd.replaceChildren(countElement(counts[/** @type {keyof counts} */ (dd.dataset.count)]));
    }
    renderFacets(els.facets, facets, state);
    renderHistogram(els.histogram, histogram, state, onAgeRange);
    renderSources(els.sources, bySource);
    renderTable(els.table, series, state);
    renderPager(els.pager, series, state);
  });
  showBanner(sourceProblems(bySource));
  els.announce.textContent = `${formatCount(counts.series)} series, ${formatCount(counts.studies)} studies, ` +
    `${formatCount(counts.patients)} patients match.`;
}

/** @param {string[]} lines problems to show; none hides the banner */
function showBanner(lines) {
  const text = lines.join("\n");
  if (els.banner.textContent !== text) els.banner.textContent = text;
  els.banner.hidden = !lines.length;
}

/** @param {number|null} min @param {number|null} max */
function onAgeRange(min, max) {
  commit(withChange(state, (d) => { d.ageMin = min; d.ageMax = max; }));
}

const typed = debounce((/** @type {string} */ text) => {
  if (text !== state.text) commit(withChange(state, (d) => { d.text = text; d.sort = null; }));
}, TEXT_DEBOUNCE_MS);

function listen() {
  setupFacets(els.facets, (field, value, on) => commit(toggleFacet(state, field, value, on)));
  els.facets.addEventListener("facets:expand", () => keepingFocus(() => {
    if (answer) renderFacets(els.facets, answer.facets, state);
  }));
  els.text.addEventListener("input", () => typed.call(els.text.value.trim()));
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    typed.call(els.text.value.trim());
    typed.flush();
  });
  const onAge = () => onAgeRange(parseAge(els.ageMin.value), parseAge(els.ageMax.value));
  els.ageMin.addEventListener("change", onAge);
  els.ageMax.addEventListener("change", onAge);
  els.ageClear.addEventListener("click", () => onAgeRange(null, null));
  const onDate = () => commit(withChange(state, (d) => {
    d.dateFrom = els.dateFrom.value;
    d.dateTo = els.dateTo.value;
  }));
  els.dateFrom.addEventListener("change", onDate);
  els.dateTo.addEventListener("change", onDate);
  els.dateClear.addEventListener("click", () => {
    commit(withChange(state, (d) => { d.dateFrom = ""; d.dateTo = ""; }));
  });
  els.clear.addEventListener("click", () => {
    typed.cancel();
    commit(emptyState());
  });
  els.table.tHead?.addEventListener("click", (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest("button[data-sort]");
    if (!(button instanceof HTMLElement) || !button.dataset.sort) return;
    const sort = nextSort(state, button.dataset.sort);
    commit(withChange(state, (d) => { d.sort = sort; }));
  });
  els.pager.next.addEventListener("click", () => {
    const cursor = answer?.series.pageInfo.endCursor;
    if (cursor) commit(withChange(state, (d) => { d.pages.push(cursor); }, { keepPage: true }));
  });
  els.pager.prev.addEventListener("click", () => {
    commit(withChange(state, (d) => { d.pages.pop(); }, { keepPage: true }));
  });
  window.addEventListener("popstate", () => {
    typed.cancel();
    state = stateFromURL(location.search);
    syncInputs();
    refresh();
  });
}

listen();
syncInputs();
refresh();
