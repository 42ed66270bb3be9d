/**
 * Numbers for people, and the one place a missing (suppressed) count is drawn.
 *
 * A hub with small-cell suppression answers `null` for counts too small to publish; every
 * count on the page goes through `countElement`, so such a count shows as a badge with an
 * accessible label instead of a number (and never as "0" or a crash).
 * @module format
 */

const NUMBER = new Intl.NumberFormat("en");

/** Visible text of a suppressed count. */
export const SUPPRESSED_TEXT = "suppressed";
/** What a screen reader says for it. */
export const SUPPRESSED_LABEL = "count suppressed: too small to publish";

/**
 * @param {number|null|undefined} n
 * @returns {boolean} whether the hub withheld this count
 */
export function isSuppressed(n) {
  return n === null || n === undefined;
}

/**
 * @param {number|null|undefined} n
 * @returns {string} "1,044,191", or "suppressed"
 */
export function formatCount(n) {
  return isSuppressed(n) ? SUPPRESSED_TEXT : NUMBER.format(/** @type {number} */ (n));
}

/**
 * A `<span>` showing a count, or the suppressed badge.
 * @param {number|null|undefined} n
 * @returns {HTMLSpanElement}
 */
export function countElement(n) {
  const span = document.createElement("span");
  span.className = "count";
  if (isSuppressed(n)) {
    span.classList.add("suppressed");
    span.textContent = SUPPRESSED_TEXT;
    span.title = SUPPRESSED_LABEL;
    span.setAttribute("aria-label", SUPPRESSED_LABEL);
  } else {
    span.textContent = formatCount(n);
  }
  return span;
}

/**
 * @param {number|null|undefined} bytes
 * @returns {string} "1.2 GB", or "" when unknown
 */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * @param {number|null|undefined} ms
 * @returns {string} "120 ms", "2.3 s", or ""
 */
export function formatLatency(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
