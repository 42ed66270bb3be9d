/**
 * One GraphQL request per cohort change: counts, facets, the age histogram, per-repository
 * status and the first page of series, all together, to the hub's public `/graphql`.
 *
 * Facets are "disjunctive": the counts in a panel with ticked values are computed without
 * that panel's own ticks (an aliased `cohort` in the same request), so the other values
 * still show what ticking them would add. Likewise the histogram ignores the age range.
 * @module api
 */

import { buildFilter } from "./filter.js";
import { FACETS } from "./state.js";

/** @typedef {import("./state.js").CohortState} CohortState */

/** Series per table page. */
export const PAGE_SIZE = 50;
/** Buckets asked per facet (IDC has ~180 collections; all of them fit). */
export const FACET_SIZE = 300;
/** Width of an age histogram bar, in years. */
export const AGE_INTERVAL = 10;

/** `suppressed`: the hub withheld a count as too small to publish (then it is null). */
const FACET_FIELDS = "field buckets { key count suppressed } missing missingSuppressed";
const SERIES_FIELDS = `seriesUid collection patientId modality bodyPart sex age studyDate
  seriesDescription instanceCount sizeBytes sources score viewerUrl downloadUrl`;

/**
 * @typedef {{key: string, count: number|null, suppressed?: boolean}} Bucket
 * @typedef {{field: string, buckets: Bucket[], missing: number|null,
 *   missingSuppressed?: boolean}} Facet
 * @typedef {{source: string, status: string, count: number|null, latencyMs: number|null,
 *   message: string|null, granularity?: string, suppressed?: boolean}} SourceResult
 *   `granularity`: "record", or "count" where this repository gives the caller counts only
 * @typedef {object} SeriesPage
 * @property {number|null} totalCount
 * @property {Array<Record<string, any>>} nodes
 * @property {{hasNextPage: boolean, endCursor: string|null}} pageInfo
 * @typedef {object} CohortAnswer
 * @property {{patients: number|null, studies: number|null, series: number|null,
 *   suppressed?: boolean, rounded?: boolean}} counts `rounded`: restricted series counted
 *   in multiples of the hub's smallest publishable cell
 * @property {Record<string, Facet>} facets by field
 * @property {Bucket[]} histogram age buckets, whatever the age range
 * @property {SeriesPage} series
 * @property {SourceResult[]} bySource
 * @property {Array<{name: string, adapter: string}>|undefined} sources the hub's
 *   repositories, when asked for
 */

/**
 * Build the GraphQL request for a cohort.
 * @param {CohortState} state
 * @param {boolean} [withSources] also list the hub's repositories (asked once per page)
 * @returns {{query: string, variables: Record<string, any>}}
 */
export function cohortRequest(state, withSources = false) {
  const variables = {
    filter: buildFilter(state),
    text: state.text || null,
    after: state.pages.at(-1) ?? null,
    sort: state.sort
      ? [{ field: state.sort.field, order: state.sort.descending ? "DESC" : "ASC" }]
      : null,
  };
  const declared = ["$filter: JSON", "$text: String", "$after: String", "$sort: [SortInput!]"];
  const own = FACETS.map((f) => f.field).filter((field) => !state.facets[field]);
  const extra = [];
  FACETS.forEach(({ field }, i) => {
    if (!state.facets[field]) return;
    variables[`f${i}`] = buildFilter(state, { facet: field });
    declared.push(`$f${i}: JSON`);
    extra.push(`facet${i}: cohort(filter: $f${i}, text: $text) {
      facets(fields: ["${field}"], size: ${FACET_SIZE}) { ${FACET_FIELDS} } }`);
  });
  const ageSet = state.ageMin !== null || state.ageMax !== null;
  const histogram = `histogram(field: "age", interval: ${AGE_INTERVAL}) { key count suppressed }`;
  if (ageSet) {
    variables.anyAge = buildFilter(state, { age: true });
    declared.push("$anyAge: JSON");
    extra.push(`ages: cohort(filter: $anyAge, text: $text) { ${histogram} }`);
  }
  const query = `query Cohort(${declared.join(", ")}) {
  cohort(filter: $filter, text: $text) {
    counts { patients studies series suppressed rounded }
    facets(fields: ${JSON.stringify(own)}, size: ${FACET_SIZE}) { ${FACET_FIELDS} }
    ${ageSet ? "" : histogram}
    series(first: ${PAGE_SIZE}, after: $after, sort: $sort) {
      totalCount nodes { ${SERIES_FIELDS} } pageInfo { hasNextPage endCursor } }
    bySource { source status count latencyMs message granularity suppressed }
  }
  ${extra.join("\n  ")}
  ${withSources ? "sources { name adapter }" : ""}
}`;
  return { query, variables };
}

/** A GraphQL answer with `errors`; `messages` are the hub's own words. */
export class GraphQLFailure extends Error {
  /** @param {string[]} messages */
  constructor(messages) {
    super(messages.join("; "));
    this.messages = messages;
  }
}

/**
 * POST a GraphQL request; rejects with an AbortError when `signal` fires.
 * @param {{query: string, variables: Record<string, any>}} request
 * @param {AbortSignal} signal
 * @returns {Promise<Record<string, any>>} `data`
 */
export async function postGraphQL(request, signal) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(request),
    signal,
  });
  /** @type {{data?: any, errors?: Array<{message: string}>, error?: string}} */
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLFailure([`the hub answered HTTP ${response.status} without JSON`]);
  }
  if (body.errors?.length) throw new GraphQLFailure(body.errors.map((e) => e.message));
  if (!response.ok || !body.data) {
    throw new GraphQLFailure([body.error ?? `the hub answered HTTP ${response.status}`]);
  }
  return body.data;
}

/**
 * Ask the hub about a cohort and gather the aliased parts into one answer.
 * @param {CohortState} state
 * @param {AbortSignal} signal
 * @param {boolean} [withSources] see cohortRequest
 * @returns {Promise<CohortAnswer>}
 */
export async function fetchCohort(state, signal, withSources = false) {
  const data = await postGraphQL(cohortRequest(state, withSources), signal);
  const { cohort } = data;
  /** @type {Record<string, Facet>} */
  const facets = {};
  for (const facet of cohort.facets) facets[facet.field] = facet;
  FACETS.forEach((_, i) => {
    for (const facet of data[`facet${i}`]?.facets ?? []) facets[facet.field] = facet;
  });
  return {
    counts: cohort.counts ?? { patients: null, studies: null, series: null },
    facets,
    histogram: (data.ages ?? cohort).histogram ?? [],
    series: cohort.series,
    bySource: cohort.bySource ?? [],
    sources: data.sources,
  };
}
