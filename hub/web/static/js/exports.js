/**
 * Export buttons: links to the hub's streamed manifests (`GET /export`) for the cohort on
 * screen. They are plain links, so they also work from the keyboard, open in a new tab,
 * or copy as a URL for a script.
 *
 * Record formats are always offered; a download manifest only when a repository of its
 * kind is configured (a TCIA manifest names one server, so there is one per TCIA source).
 * @module exports
 */

import { h } from "./dom.js";
import { EXPORT_FORMATS, exportURL } from "./filter.js";

/** @typedef {import("./state.js").CohortState} CohortState */
/** @typedef {{name: string, adapter: string}} SourceInfo */

/**
 * @param {HTMLElement} container
 * @param {CohortState} state
 * @param {SourceInfo[]|null} sources the hub's repositories; null while unknown
 */
export function renderExports(container, state, sources) {
  const links = [];
  for (const { format, label, kind } of EXPORT_FORMATS) {
    const own = kind === null ? [] : (sources ?? []).filter((s) => s.adapter === kind);
    if (kind !== null && !own.length) continue;
    const perSource = format === "tcia" && own.length > 1 ? own.map((s) => s.name) : [undefined];
    for (const source of perSource) {
      links.push(h("a", {
        className: "button", href: exportURL(state, format, source), download: "",
        id: `export-${format}${source ? `-${source}` : ""}`, "data-format": format,
        textContent: source ? `${label}: ${source}` : label,
      }));
    }
  }
  container.replaceChildren(...links);
}
