/**
 * Tiny DOM helpers: build elements without innerHTML (repository data is never parsed as
 * HTML), and keep keyboard focus across a re-render.
 * @module dom
 */

/**
 * Create an element.
 * @param {string} tag
 * @param {Record<string, any>} [props] properties (`className`, `textContent`, …); keys
 *   starting with "aria-", "data-" or "role" are set as attributes
 * @param {Array<Node|string|null|undefined|false>} [children]
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, children = []) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("aria-") || key.startsWith("data-") || key === "role") {
      el.setAttribute(key, String(value));
    } else {
      // @ts-ignore -- a known property of this element
      el[key] = value;
    }
  }
  for (const child of children) {
    if (child || child === "") el.append(child);
  }
  return el;
}

/**
 * Run `render`, which may replace the element holding focus, then give focus back to the
 * element with the same id, so a keyboard user stays where they were.
 * @param {() => void} render
 */
export function keepingFocus(render) {
  const id = document.activeElement?.id;
  render();
  if (id && document.activeElement?.id !== id) document.getElementById(id)?.focus();
}

/**
 * A link, only for http(s) URLs: a repository could send `javascript:` or worse.
 * @param {string|null|undefined} url
 * @returns {boolean}
 */
export function isWebURL(url) {
  if (!url) return false;
  try {
    const { protocol } = new URL(url, location.href);
    return protocol === "https:" || protocol === "http:";
  } catch {
    return false;
  }
}

/**
 * Call `fn` once input has paused for `ms`; `flush` runs a pending call now.
 * @template {any[]} A
 * @param {(...args: A) => void} fn
 * @param {number} ms
 * @returns {{call: (...args: A) => void, flush: () => void, cancel: () => void}}
 */
export function debounce(fn, ms) {
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  /** @type {A|undefined} */
  let pending;
  const run = () => {
    clearTimeout(timer);
    const args = pending;
    pending = undefined;
    if (args) fn(...args);
  };
  return {
    call: (...args) => {
      pending = args;
      clearTimeout(timer);
      timer = setTimeout(run, ms);
    },
    flush: run,
    cancel: () => {
      clearTimeout(timer);
      pending = undefined;
    },
  };
}
