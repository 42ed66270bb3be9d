/**
 * Facet panels: one fieldset of checkboxes per field, each value with its live count.
 *
 * Panels show their first values by count, plus every ticked one; "Show all" expands.
 * Checkboxes are native inputs, so Tab, Space and screen readers work as usual; Enter
 * ticks too.
 * @module facets
 */

import { h } from "./dom.js";
import { countElement, formatCount } from "./format.js";
import { FACETS, MISSING } from "./state.js";

/** @typedef {import("./state.js").CohortState} CohortState */
/** @typedef {import("./api.js").Facet} Facet */
/** @typedef {(field: string, value: string, on: boolean) => void} ToggleHandler */

/** Values shown before "Show all". */
const COLLAPSED = 8;
/** Fields the researcher expanded (kept across renders). */
const expanded = new Set();

/**
 * A stable element id for a facet value (ids may not hold spaces).
 * @param {string} field
 * @param {string} value
 * @returns {string}
 */
export function checkboxId(field, value) {
  const safe = value.replace(/[^A-Za-z0-9_-]/g, (c) => `.${c.codePointAt(0)?.toString(16)}`);
  return `facet-${field}-${safe}`;
}

/**
 * Build the empty panels once, and listen for ticks.
 * @param {HTMLElement} container
 * @param {ToggleHandler} onToggle
 */
export function setupFacets(container, onToggle) {
  for (const { field, label } of FACETS) {
    container.append(
      h("fieldset", { className: "panel facet", id: `facet-${field}` }, [
        h("legend", { textContent: label }),
        h("ul", { className: "values" }, [h("li", { textContent: "Loading…" })]),
        h("button", {
          type: "button", className: "more link", hidden: true,
          "aria-controls": `facet-${field}`, "data-field": field,
        }),
      ]),
    );
  }
  container.addEventListener("change", (event) => {
    const box = /** @type {HTMLInputElement} */ (event.target);
    if (box.type === "checkbox" && box.dataset.field) {
      onToggle(box.dataset.field, /** @type {string} */ (box.dataset.value), box.checked);
    }
  });
  container.addEventListener("keydown", (event) => {
    const box = /** @type {HTMLInputElement} */ (event.target);
    if (event.key === "Enter" && box.type === "checkbox") {
      event.preventDefault();
      box.click();
    }
  });
  container.addEventListener("click", (event) => {
    const button = /** @type {HTMLElement} */ (event.target);
    const field = button.dataset?.field;
    if (!button.classList?.contains("more") || !field) return;
    if (expanded.has(field)) expanded.delete(field);
    else expanded.add(field);
    button.dispatchEvent(new CustomEvent("facets:expand", { bubbles: true }));
  });
}

/**
 * @typedef {{value: string, count: number|null, label: string}} Item
 */

/**
 * The values a panel lists, in order: the hub's buckets, ticked values it did not return,
 * and "no value" when any series lacks the field.
 * @param {Facet|undefined} facet
 * @param {string[]} ticked
 * @returns {Item[]}
 */
function items(facet, ticked) {
  /** @type {Item[]} */
  const list = (facet?.buckets ?? []).map((b) => ({ value: b.key, count: b.count, label: b.key }));
  const seen = new Set(list.map((i) => i.value));
  for (const value of ticked) {
    if (!seen.has(value) && value !== MISSING) list.push({ value, count: 0, label: value });
  }
  if (facet?.missing !== 0 || ticked.includes(MISSING)) {
    list.push({ value: MISSING, count: facet?.missing ?? null, label: "(no value)" });
  }
  return list;
}

/**
 * Draw every panel's values and counts for the current answer.
 * @param {HTMLElement} container
 * @param {Record<string, Facet>} facets the answer's facets, by field
 * @param {CohortState} state
 */
export function renderFacets(container, facets, state) {
  for (const { field, label } of FACETS) {
    const panel = /** @type {HTMLElement} */ (container.querySelector(`#facet-${field}`));
    const ticked = state.facets[field] ?? [];
    const all = items(facets[field], ticked);
    const open = expanded.has(field);
    const shown = open ? all : all.filter((item, i) => i < COLLAPSED || ticked.includes(item.value));
    const list = h("ul", { className: "values" }, shown.map((item) => valueRow(field, item, ticked)));
    if (!all.length) list.append(h("li", { className: "empty", textContent: "No values" }));
    panel.querySelector("ul")?.replaceWith(list);
    const more = /** @type {HTMLButtonElement} */ (panel.querySelector("button.more"));
    more.hidden = all.length <= COLLAPSED;
    more.textContent = open ? "Show fewer" : `Show all ${all.length} ${label.toLowerCase()} values`;
    more.setAttribute("aria-expanded", String(open));
  }
}

/**
 * @param {string} field
 * @param {Item} item
 * @param {string[]} ticked
 * @returns {HTMLElement}
 */
function valueRow(field, item, ticked) {
  const id = checkboxId(field, item.value);
  const checked = ticked.includes(item.value);
  const box = h("input", {
    type: "checkbox", id, checked, "data-field": field, "data-value": item.value,
  });
  const label = h("label", { htmlFor: id, title: `${item.label}: ${formatCount(item.count)}` }, [
    h("span", { className: "value", textContent: item.label }),
    countElement(item.count),
  ]);
  return h("li", { className: checked ? "ticked" : "" }, [box, label]);
}
