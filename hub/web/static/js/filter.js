/**
 * Turn a cohort into the hub's Guppy-style JSON filter (DESIGN.md "The cohort filter"),
 * and into export links.
 *
 * Values ticked in one panel are alternatives (OR, via `IN`); panels, the age range and
 * the date range all narrow the cohort (AND).
 * @module filter
 */

import { FACETS, MISSING } from "./state.js";

/** @typedef {import("./state.js").CohortState} CohortState */

/**
 * Export formats the hub's `/export` endpoint streams. `kind` is the adapter whose
 * repositories a download manifest is for (null: the records themselves, any source).
 * @type {Array<{format: string, label: string, kind: string|null}>}
 */
export const EXPORT_FORMATS = [
  { format: "csv", label: "CSV table", kind: null },
  { format: "ndjson", label: "NDJSON records", kind: null },
  { format: "s5cmd", label: "s5cmd manifest (IDC buckets)", kind: "idc" },
  { format: "tcia", label: "TCIA manifest", kind: "tcia" },
  { format: "gen3", label: "Gen3 manifest", kind: "gen3" },
  { format: "wadors", label: "DICOMweb WADO-RS URLs", kind: "dicomweb" },
];

/**
 * @typedef {object} Omit
 * @property {string} [facet] leave this facet's ticks out (its own counts stay OR-able)
 * @property {boolean} [age] leave the age range out (the histogram shows every age)
 */

/**
 * @param {string} field
 * @param {string[]} values ticked values, possibly with MISSING
 * @returns {object} one clause
 */
function facetClause(field, values) {
  const present = values.filter((v) => v !== MISSING);
  const inClause = { IN: { [field]: present } };
  if (present.length === values.length) return inClause;
  const missing = { is_missing: { [field]: true } };
  return present.length ? { OR: [inClause, missing] } : missing;
}

/**
 * The Guppy filter of a cohort.
 * @param {CohortState} state
 * @param {Omit} [omit] parts to leave out
 * @returns {object|null} null when nothing narrows the cohort
 */
export function buildFilter(state, omit = {}) {
  const clauses = [];
  for (const { field } of FACETS) {
    const values = state.facets[field] ?? [];
    if (values.length && field !== omit.facet) clauses.push(facetClause(field, values));
  }
  if (!omit.age) {
    if (state.ageMin !== null) clauses.push({ ">=": { age: state.ageMin } });
    if (state.ageMax !== null) clauses.push({ "<=": { age: state.ageMax } });
  }
  if (state.dateFrom) clauses.push({ ">=": { study_date: state.dateFrom } });
  if (state.dateTo) clauses.push({ "<=": { study_date: state.dateTo } });
  return clauses.length ? { AND: clauses } : null;
}

/**
 * The `/export` link that streams a manifest of the whole cohort.
 * @param {CohortState} state
 * @param {string} format one of EXPORT_FORMATS
 * @param {string} [source] one repository's manifest (needed when several share a kind)
 * @returns {string} a same-origin URL
 */
export function exportURL(state, format, source) {
  const params = new URLSearchParams({ format });
  const filter = buildFilter(state);
  if (filter) params.set("filter", JSON.stringify(filter));
  if (state.text) params.set("text", state.text);
  if (source) params.set("source", source);
  return `/export?${params}`;
}
