/**
 * The age histogram: inline SVG bars, one per 10 years, over every age (the age range
 * itself is left out of the counts so the whole distribution stays visible).
 *
 * Click a bar (or focus it and press Enter/Space) to keep that decade; Shift+click
 * stretches the current range to it; clicking the only kept decade again clears it.
 * The number inputs beside it do the same for any range.
 * @module histogram
 */

import { formatCount, isSuppressed } from "./format.js";
import { AGE_INTERVAL } from "./api.js";

/** @typedef {import("./api.js").Bucket} Bucket */
/** @typedef {import("./state.js").CohortState} CohortState */
/** @typedef {(min: number|null, max: number|null) => void} RangeHandler */

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 90;
const AXIS = 14;

/**
 * @param {string} tag
 * @param {Record<string, string|number>} attrs
 * @returns {SVGElement}
 */
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

/**
 * The range a click on the decade starting at `start` selects.
 * @param {CohortState} state
 * @param {number} start
 * @param {boolean} extend Shift held: stretch the current range
 * @returns {[number|null, number|null]}
 */
export function clickedRange(state, start, extend) {
  const end = start + AGE_INTERVAL - 1;
  const { ageMin, ageMax } = state;
  if (extend && (ageMin !== null || ageMax !== null)) {
    return [Math.min(ageMin ?? start, start), Math.max(ageMax ?? end, end)];
  }
  if (ageMin === start && ageMax === end) return [null, null];
  return [start, end];
}

/**
 * @param {CohortState} state
 * @param {number} start
 * @returns {boolean} whether the decade lies inside the kept range
 */
function inRange(state, start) {
  const end = start + AGE_INTERVAL - 1;
  if (state.ageMin === null && state.ageMax === null) return false;
  return (state.ageMin ?? 0) <= start && end <= (state.ageMax ?? Infinity);
}

/**
 * Draw the histogram; clicks and keys call `onRange`.
 * @param {HTMLElement} container
 * @param {Bucket[]} buckets
 * @param {CohortState} state
 * @param {RangeHandler} onRange
 */
export function renderHistogram(container, buckets, state, onRange) {
  const shown = trimEmptyTail(buckets);
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT + AXIS}`, class: "bars",
    role: "group", "aria-label": "Series by age at study; activate a bar to keep that decade",
  });
  const peak = Math.max(1, ...shown.map((b) => b.count ?? 0));
  const slot = WIDTH / Math.max(1, shown.length);
  shown.forEach((bucket, i) => {
    const start = Math.round(Number(bucket.key));
    const height = ((bucket.count ?? 0) / peak) * (HEIGHT - 2);
    const bar = svg("g", {
      class: inRange(state, start) ? "bar selected" : "bar", tabindex: 0, role: "button",
      id: `age-bar-${start}`,
      "aria-pressed": String(inRange(state, start)),
      "aria-label": `Age ${start} to ${start + AGE_INTERVAL - 1}: ${
        isSuppressed(bucket.count) ? "count suppressed" : `${formatCount(bucket.count)} series`}`,
    });
    bar.append(
      svg("rect", { x: i * slot, y: 0, width: slot, height: HEIGHT, class: "hit" }),
      svg("rect", { x: i * slot + 1, y: HEIGHT - height, width: slot - 2, height, class: "fill" }),
      svg("text", { x: i * slot + slot / 2, y: HEIGHT + AXIS - 3, class: "tick" }),
    );
    /** @type {SVGTextElement} */ (bar.lastChild).textContent = String(start);
    const choose = (/** @type {boolean} */ extend) => onRange(...clickedRange(state, start, extend));
    bar.addEventListener("click", (event) => choose(event.shiftKey));
    bar.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose(event.shiftKey);
      }
    });
    chart.append(bar);
  });
  container.replaceChildren(chart);
  if (!shown.length) container.textContent = "No ages recorded for this cohort.";
}

/**
 * Drop the empty decades after the last one with series (ages run to 150 in DICOM).
 * @param {Bucket[]} buckets
 * @returns {Bucket[]}
 */
function trimEmptyTail(buckets) {
  let last = buckets.length - 1;
  while (last >= 0 && buckets[last].count === 0) last -= 1;
  return buckets.slice(0, last + 1);
}
