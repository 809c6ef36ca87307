// @ts-check
/**
 * Tiny DOM builder. Strings and numbers always become text nodes, so data can never become
 * markup: this module (and the whole console) never uses innerHTML.
 *
 *   h('button', { class: 'danger', onclick: remove }, 'Delete')
 */

/** @typedef {Node | string | number | null | undefined | false} Child */
/** @typedef {Record<string, string | number | boolean | null | undefined | EventListener>} Props */

/**
 * @param {string} tag
 * @param {Props} [props] attributes; `on<event>` values are listeners; `true` sets a boolean attribute
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value') /** @type {HTMLInputElement} */ (el).value = String(value);
    else if (key === 'checked') /** @type {HTMLInputElement} */ (el).checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} parent
 * @param {Array<Child | Child[]>} children
 */
function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/**
 * Replace everything inside `el`.
 * @param {Element} el
 * @param {...(Child | Child[])} children
 */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * A table with a header row; `rows` are arrays of cells (strings or nodes).
 * @param {string[]} headers
 * @param {Array<Array<Child | Child[]>>} rows
 * @param {string} [empty] text when there are no rows
 */
export function table(headers, rows, empty = 'Nothing here yet.') {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))),
  );
}

/**
 * Local, readable form of an ISO timestamp ('' for null).
 * @param {string | null | undefined} iso
 */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/**
 * A `<time>` element showing `when(iso)` with the exact value as its tooltip.
 * @param {string | null | undefined} iso
 */
export function time(iso) {
  return iso ? h('time', { datetime: iso, title: iso }, when(iso)) : h('span', { class: 'muted' }, '—');
}

/**
 * A status pill.
 * @param {string} text
 * @param {string} [kind] css modifier: ok, warn, bad, muted
 */
export function pill(text, kind = 'muted') {
  return h('span', { class: `pill ${kind}` }, text);
}

/**
 * Copy text to the clipboard; falls back to selecting the given input.
 * @param {string} text
 * @param {HTMLInputElement} [input]
 * @returns {Promise<boolean>}
 */
export async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input?.select();
    return false;
  }
}
