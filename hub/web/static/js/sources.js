/**
 * How each repository answered: status, series count, time taken, and the hub's message.
 * Any repository that did not answer fully is also named in the alert banner, so a
 * researcher never mistakes a repository being down for a cohort being small.
 * @module sources
 */

import { h } from "./dom.js";
import { countElement, formatLatency } from "./format.js";

/** @typedef {import("./api.js").SourceResult} SourceResult */

/** Why a repository's row shows counts but none of its series are listed. */
export const COUNTS_ONLY = "counts only: this repository does not show you its records";

/** Plain words for each status the hub reports. */
export const STATUS_TEXT = {
  ok: "answered",
  partial: "partial answer",
  timeout: "timed out",
  error: "error",
  skipped: "skipped",
};

/**
 * @param {HTMLTableSectionElement} tbody
 * @param {SourceResult[]} results
 */
export function renderSources(tbody, results) {
  const rows = results.map((r) =>
    h("tr", {
      "data-source": r.source,
      "data-status": r.status,
      "data-granularity": r.granularity ?? "record",
      title: r.granularity === "count" ? COUNTS_ONLY : null,
    }, [
      h("th", { scope: "row", textContent: r.source }),
      h("td", {}, [
        h("span", {
          className: `status status-${r.status}`,
          textContent: STATUS_TEXT[/** @type {keyof STATUS_TEXT} */ (r.status)] ?? r.status,
        }),
      ]),
      h("td", { className: "num" }, [
        r.status === "ok" || r.status === "partial" ? countElement(r.count) : "—",
      ]),
      h("td", { className: "num", textContent: formatLatency(r.latencyMs) }),
      h("td", { className: "message", textContent: r.message ?? "" }),
    ]),
  );
  tbody.replaceChildren(...rows);
}

/**
 * Sentences for the banner about repositories that did not answer fully.
 * @param {SourceResult[]} results
 * @returns {string[]} empty when every repository answered
 */
export function sourceProblems(results) {
  return results
    .filter((r) => r.status !== "ok")
    .map((r) => {
      const what = STATUS_TEXT[/** @type {keyof STATUS_TEXT} */ (r.status)] ?? r.status;
      const tail = r.status === "partial" ? "counts include only what arrived" : "counts exclude it";
      return `Repository ${r.source}: ${what}${r.message ? ` (${r.message})` : ""}; ${tail}.`;
    });
}
