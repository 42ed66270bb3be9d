/**
 * The ranked, paged table of series: sortable column headers, links to each repository's
 * viewer and download location, and previous/next paging over the hub's cursors.
 * @module table
 */

import { h, isWebURL } from "./dom.js";
import { countElement, formatBytes, formatCount } from "./format.js";
import { PAGE_SIZE } from "./api.js";

/** @typedef {import("./state.js").CohortState} CohortState */
/** @typedef {import("./api.js").SeriesPage} SeriesPage */
/** @typedef {(sort: import("./state.js").Sort|null) => void} SortHandler */

/**
 * @typedef {object} Column
 * @property {string} label
 * @property {(node: Record<string, any>) => Node|string} cell
 * @property {string} [sort] canonical field to sort on; absent: not sortable
 * @property {boolean} [numeric]
 * @property {string} [className] extra class of the body cells
 * @property {boolean} [relevance] shown only when there is free text
 * @property {boolean} [rowHeader] the cell that names the row for screen readers
 */

/** @param {any} v @returns {string} */
const text = (v) => (v === null || v === undefined ? "" : String(v));

/** @type {Column[]} */
export const COLUMNS = [
  { label: "Relevance", sort: "score", numeric: true, relevance: true,
    cell: (n) => (n.score === null || n.score === undefined ? "" : n.score.toFixed(2)) },
  { label: "Collection", sort: "collection", cell: (n) => text(n.collection) },
  { label: "Patient", sort: "patient_id", rowHeader: true, cell: (n) => text(n.patientId) },
  { label: "Open", cell: links },
  { label: "Modality", sort: "modality", cell: (n) => text(n.modality) },
  { label: "Body part", sort: "body_part", cell: (n) => text(n.bodyPart) },
  { label: "Sex", sort: "sex", cell: (n) => text(n.sex) },
  { label: "Age", sort: "age", numeric: true, cell: (n) => text(n.age) },
  { label: "Study date", sort: "study_date", cell: (n) => text(n.studyDate) },
  { label: "Series description", className: "description", cell: (n) => text(n.seriesDescription) },
  { label: "Images", sort: "instance_count", numeric: true,
    cell: (n) => (n.instanceCount === null ? "" : formatCount(n.instanceCount)) },
  { label: "Size", sort: "size_bytes", numeric: true, cell: (n) => formatBytes(n.sizeBytes) },
  { label: "Repositories", cell: (n) => (n.sources ?? []).join(", ") },
];

/**
 * The viewer link and the download location of one series.
 * @param {Record<string, any>} node
 * @returns {Node}
 */
function links(node) {
  const cell = h("span", { className: "links" });
  const about = ` series ${node.seriesUid}`;
  if (isWebURL(node.viewerUrl)) {
    cell.append(h("a", { href: node.viewerUrl, target: "_blank", rel: "noopener noreferrer" }, [
      "View", h("span", { className: "visually-hidden", textContent: `${about} (new tab)` }),
    ]));
  }
  if (isWebURL(node.downloadUrl)) {
    cell.append(h("a", { href: node.downloadUrl, rel: "noopener noreferrer" }, [
      "Download", h("span", { className: "visually-hidden", textContent: about }),
    ]));
  } else if (node.downloadUrl) {
    cell.append(h("code", { className: "url", textContent: node.downloadUrl,
      title: "Fetch with an S3/GCS client, or export an s5cmd manifest" }));
  }
  return cell;
}

/**
 * @param {CohortState} state
 * @returns {Column[]} the columns shown for this cohort
 */
function visibleColumns(state) {
  return COLUMNS.filter((c) => !c.relevance || state.text);
}

/**
 * How the table is ordered: the explicit sort, else relevance when there is text.
 * @param {CohortState} state
 * @returns {{field: string, descending: boolean}|null}
 */
function effectiveSort(state) {
  return state.sort ?? (state.text ? { field: "score", descending: true } : null);
}

/**
 * The sort after a click on a column header: ascending, descending, then back to default.
 * @param {CohortState} state
 * @param {string} field
 * @returns {import("./state.js").Sort|null}
 */
export function nextSort(state, field) {
  const current = effectiveSort(state);
  if (current?.field !== field) return { field, descending: field === "score" };
  if (field === "score") return current.descending ? { field, descending: false } : null;
  return current.descending ? null : { field, descending: true };
}

/**
 * Draw the header row (sort buttons with aria-sort) and the rows of one page.
 * @param {HTMLTableElement} table
 * @param {SeriesPage} page
 * @param {CohortState} state
 */
export function renderTable(table, page, state) {
  const columns = visibleColumns(state);
  const sort = effectiveSort(state);
  const headers = columns.map((c) => {
    const direction = sort && c.sort === sort.field ? (sort.descending ? "descending" : "ascending") : "none";
    const th = h("th", { scope: "col", className: c.numeric ? "num" : "", "aria-sort": c.sort ? direction : null });
    if (!c.sort) {
      th.textContent = c.label;
      return th;
    }
    const arrow = { ascending: " ▲", descending: " ▼", none: "" }[direction];
    th.append(h("button", { type: "button", className: "sort", id: `sort-${c.sort}`, "data-sort": c.sort },
      [c.label, h("span", { "aria-hidden": "true", textContent: arrow })]));
    return th;
  });
  /** @type {HTMLElement} */ (table.tHead?.rows[0]).replaceChildren(...headers);
  const rows = page.nodes.map((node) =>
    h("tr", { "data-series": node.seriesUid }, columns.map((c) =>
      h(c.rowHeader ? "th" : "td", {
        className: [c.numeric ? "num" : "", c.className ?? ""].join(" ").trim(),
        scope: c.rowHeader ? "row" : null,
        title: c.className === "description" ? text(node.seriesDescription) : null,
      }, [c.cell(node)]))),
  );
  if (!rows.length) {
    rows.push(h("tr", {}, [h("td", { colSpan: columns.length, className: "empty",
      textContent: "No series you may see as records match this cohort." })]));
  }
  table.tBodies[0].replaceChildren(...rows);
  const caption = sort
    ? `ordered by ${columns.find((c) => c.sort === sort.field)?.label ?? sort.field}, ${sort.descending ? "descending" : "ascending"}`
    : "in index order";
  /** @type {HTMLElement} */ (table.caption).textContent = `Series matching the cohort, ${caption}`;
}

/**
 * Paging controls for the page shown.
 * @param {{prev: HTMLButtonElement, next: HTMLButtonElement, status: HTMLElement}} pager
 * @param {SeriesPage} page
 * @param {CohortState} state
 */
export function renderPager(pager, page, state) {
  const first = state.pages.length * PAGE_SIZE + 1;
  const last = first + page.nodes.length - 1;
  const focused = document.activeElement;
  pager.prev.disabled = !state.pages.length;
  pager.next.disabled = !page.pageInfo.hasNextPage;
  // A button that just became disabled drops focus; hand it to the other one.
  if (focused === pager.prev && pager.prev.disabled) pager.next.focus();
  if (focused === pager.next && pager.next.disabled) pager.prev.focus();
  pager.status.replaceChildren(
    page.nodes.length ? `Series ${formatCount(first)}–${formatCount(last)} of ` : "0 of ",
    countElement(page.totalCount),
  );
}
