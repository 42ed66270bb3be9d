/**
 * The cohort a researcher is building, and how it is written into the page URL.
 *
 * The URL query string is the single source of truth: a copied link reproduces the
 * cohort, its sort and its page, and back/forward walk through earlier cohorts.
 * Example: `?modality=CT&modality=MR&sex=female&age=55-65&from=2010-01-01&q=lung&sort=-age`.
 * @module state
 */

/** @typedef {{field: string, label: string}} FacetSpec */

/** Facet panels, in display order; `field` is the canonical field name. @type {FacetSpec[]} */
export const FACETS = [
  { field: "source", label: "Repository" },
  { field: "collection", label: "Collection" },
  { field: "modality", label: "Modality" },
  { field: "body_part", label: "Body part" },
  { field: "sex", label: "Sex" },
  { field: "license", label: "Licence" },
  { field: "disease", label: "Disease" },
];

/** The facet value standing for "no value recorded" (DICOM leaves many fields empty). */
export const MISSING = "(missing)";

/**
 * @typedef {object} Sort
 * @property {string} field canonical field name, or "score" (relevance of the text)
 * @property {boolean} descending
 */

/**
 * @typedef {object} CohortState
 * @property {Record<string, string[]>} facets ticked values per facet field
 * @property {number|null} ageMin inclusive, whole years
 * @property {number|null} ageMax inclusive, whole years
 * @property {string} dateFrom ISO date or ""
 * @property {string} dateTo ISO date or ""
 * @property {string} text free text, ranked by relevance
 * @property {Sort|null} sort null: relevance with text, index order without
 * @property {string[]} pages cursor stack: the `after` cursor of page 2, 3, …; the last
 *   one is the page shown (empty: first page)
 */

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const SORT_FIELD = /^[a-z_]{1,40}$/;

/** @returns {CohortState} the empty cohort: everything, first page. */
export function emptyState() {
  return {
    facets: {}, ageMin: null, ageMax: null, dateFrom: "", dateTo: "",
    text: "", sort: null, pages: [],
  };
}

/**
 * @param {string} value
 * @returns {number|null} a whole number of years, or null when blank or not one
 */
export function parseAge(value) {
  if (!/^\s*\d{1,3}\s*$/.test(value)) return null;
  return Number.parseInt(value, 10);
}

/**
 * Read a cohort from a URL query string; anything malformed is ignored, not fatal.
 * @param {string} search `location.search`
 * @returns {CohortState}
 */
export function stateFromURL(search) {
  const params = new URLSearchParams(search);
  const state = emptyState();
  for (const { field } of FACETS) {
    const values = [...new Set(params.getAll(field).filter(Boolean))];
    if (values.length) state.facets[field] = values;
  }
  const age = /^(\d{0,3})-(\d{0,3})$/.exec(params.get("age") ?? "");
  if (age) {
    state.ageMin = parseAge(age[1]);
    state.ageMax = parseAge(age[2]);
  }
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  state.dateFrom = ISO_DATE.test(from) ? from : "";
  state.dateTo = ISO_DATE.test(to) ? to : "";
  state.text = (params.get("q") ?? "").trim();
  const sort = params.get("sort") ?? "";
  const field = sort.replace(/^-/, "");
  if (SORT_FIELD.test(field)) state.sort = { field, descending: sort.startsWith("-") };
  state.pages = params.getAll("after").filter(Boolean);
  return state;
}

/**
 * Write a cohort as a URL query string (with its leading "?", or "" when empty).
 * @param {CohortState} state
 * @returns {string}
 */
export function stateToURL(state) {
  const params = new URLSearchParams();
  for (const { field } of FACETS) {
    for (const value of state.facets[field] ?? []) params.append(field, value);
  }
  if (state.ageMin !== null || state.ageMax !== null) {
    params.set("age", `${state.ageMin ?? ""}-${state.ageMax ?? ""}`);
  }
  if (state.dateFrom) params.set("from", state.dateFrom);
  if (state.dateTo) params.set("to", state.dateTo);
  if (state.text) params.set("q", state.text);
  if (state.sort) params.set("sort", (state.sort.descending ? "-" : "") + state.sort.field);
  for (const cursor of state.pages) params.append("after", cursor);
  const query = params.toString();
  return query ? `?${query}` : "";
}

/**
 * A copy of `state` changed by `change`; the page goes back to the first unless kept.
 * @param {CohortState} state
 * @param {(draft: CohortState) => void} change mutates the copy it is given
 * @param {{keepPage?: boolean}} [options]
 * @returns {CohortState}
 */
export function withChange(state, change, { keepPage = false } = {}) {
  /** @type {CohortState} */
  const draft = structuredClone(state);
  change(draft);
  if (!keepPage) draft.pages = [];
  for (const field of Object.keys(draft.facets)) {
    if (!draft.facets[field].length) delete draft.facets[field];
  }
  return draft;
}

/**
 * Tick or untick one facet value.
 * @param {CohortState} state
 * @param {string} field
 * @param {string} value
 * @param {boolean} on
 * @returns {CohortState}
 */
export function toggleFacet(state, field, value, on) {
  return withChange(state, (draft) => {
    const values = (draft.facets[field] ?? []).filter((v) => v !== value);
    draft.facets[field] = on ? [...values, value] : values;
  });
}
