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
 * A table with a header row; `rows` are arrays of cells (strings or nodes). A header given as
 * `[text, class]` puts that class on the whole column (e.g. `wide`: hidden on narrow screens).
 * @param {Array<string | [string, string]>} headers
 * @param {Array<Array<Child | Child[]>>} rows
 * @param {string} [empty] text when there are no rows
 */
export function table(headers, rows, empty = 'Nothing here yet.') {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  const classes = headers.map((t) => (Array.isArray(t) ? t[1] : null));
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, headers.map((t, i) => h('th', { class: classes[i] }, Array.isArray(t) ? t[0] : t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c, i) => h('td', { class: classes[i] }, c))))),
  );
}

/**
 * An identifier (UUID, msg_id, …) in monospace on one line: cut with an ellipsis when the column
 * is narrow, the full value as its tooltip, and copied whole on click (Enter when focused).
 * The text node always holds the full value, so selecting and copying it also gives all of it.
 * @param {string} value
 * @param {string} [what] e.g. 'msg_id' (tooltip and announcement)
 */
export function idText(value, what = 'id') {
  const el = h('code', { class: 'id', title: `${what}: ${value} (click to copy)`, tabindex: '0', 'data-id': value }, value);
  const copyIt = async () => {
    if (await copy(value)) {
      el.classList.add('copied');
      setTimeout(() => el.classList.remove('copied'), 900);
    }
  };
  el.addEventListener('click', (event) => {
    event.preventDefault();
    void copyIt();
  });
  el.addEventListener('keydown', (event) => {
    if (/** @type {KeyboardEvent} */ (event).key === 'Enter') void copyIt();
  });
  return el;
}

/**
 * A button that runs `action` and is disabled while it does.
 * @param {string} text
 * @param {() => Promise<unknown>} action
 * @param {string} [cls]
 */
export function button(text, action, cls = 'ghost') {
  const b = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: cls }, text));
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await action();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/**
 * A form whose submit runs `action` (never a real navigation).
 * @param {string} cls
 * @param {() => Promise<unknown>} action
 * @param {...Child} children
 */
export function form(cls, action, ...children) {
  const f = /** @type {HTMLFormElement} */ (h('form', { class: cls, method: 'post' }, ...children));
  f.addEventListener('submit', async (event) => {
    event.preventDefault();
    const submit = /** @type {HTMLButtonElement | null} */ (f.querySelector('button[type=submit]'));
    if (submit) submit.disabled = true;
    try {
      await action();
    } finally {
      if (submit) submit.disabled = false;
    }
  });
  return f;
}

/**
 * A labelled text input.
 * @param {string} label
 * @param {Record<string, string | boolean | undefined>} [attrs]
 */
export function field(label, attrs = {}) {
  const input = /** @type {HTMLInputElement} */ (h('input', { type: 'text', spellcheck: 'false', ...attrs }));
  return { input, el: h('label', {}, label, input) };
}

/**
 * A labelled select; `options` are values or `[value, text]` pairs.
 * @param {string} label
 * @param {Array<string | [string, string]>} options
 * @param {string} [value]
 */
export function select(label, options, value = '') {
  const el = /** @type {HTMLSelectElement} */ (
    h('select', { 'aria-label': label }, options.map((o) => (Array.isArray(o) ? h('option', { value: o[0] }, o[1]) : h('option', { value: o }, o))))
  );
  el.value = value;
  return { input: el, el: h('label', {}, label, el) };
}

/**
 * Status pill of a webhook delivery.
 * @param {string} status
 */
export function deliveryPill(status) {
  return pill(status, status === 'succeeded' ? 'ok' : status === 'failed' ? 'bad' : 'muted');
}

/**
 * Local, short form of an ISO timestamp ('' for null): the time alone today, else date and time.
 * @param {string | null | undefined} iso
 */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString()
    : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', ...(d.getFullYear() === new Date().getFullYear() ? {} : { year: 'numeric' }) });
}

/**
 * An event type in monospace that may break after its underscores on narrow screens
 * (`<wbr>`: copying the text gives the plain name).
 * @param {string} type
 */
export function typeName(type) {
  const parts = type.split('_');
  return h('code', { class: 'type' }, parts.flatMap((p, i) => (i < parts.length - 1 ? [`${p}_`, h('wbr', {})] : [p])));
}

/**
 * A `<time>` element showing `when(iso)` with the exact value as its tooltip.
 * @param {string | null | undefined} iso
 */
export function time(iso) {
  return iso ? h('time', { datetime: iso, title: `${new Date(iso).toLocaleString()} (${iso})` }, when(iso)) : h('span', { class: 'muted' }, '—');
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
