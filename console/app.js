// @ts-check
/**
 * Console shell: sign-in/out, hash routing and the error/notice banners. Routes:
 * #/overview (start), #/events, #/deliveries[?filters], #/deliveries/<id>, #/send, #/connections,
 * #/accounts, #/accounts/<id>. Each view lives in its own module and gets a `Ctx`.
 */
import { renderAccount, renderAccounts } from './accounts.js';
import { ApiError, request, session } from './api.js';
import { renderConnections } from './connections.js';
import { renderDeliveries, renderDelivery } from './deliveries.js';
import { renderOverview } from './overview.js';
import { renderSend } from './send.js';
import { renderTail } from './tail.js';

/**
 * What every view gets.
 * @typedef {{
 *   api: typeof request,
 *   run: <T>(task: () => Promise<T>) => Promise<T | undefined>,
 *   notify: (text: string) => void,
 *   navigate: (hash: string, notice?: string) => void,
 * }} Ctx
 * A view renders into `root` and may return a cleanup function (run when leaving the view).
 * `param` is the path segment after the section (an id), `query` the `?…` of the address.
 * @typedef {(root: HTMLElement, ctx: Ctx, param?: string, query?: URLSearchParams) => (void | (() => void))} View
 */

/** @type {Record<string, [View, View?]>} section → [list view, view of one item] */
const ROUTES = {
  overview: [renderOverview],
  events: [renderTail],
  deliveries: [renderDeliveries, renderDelivery],
  send: [renderSend],
  connections: [renderConnections],
  accounts: [renderAccounts, renderAccount],
};

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Cleanup of the current view (stops timers). */
let leave = () => {};

/** @param {unknown} err */
function showError(err) {
  const e = err instanceof ApiError ? err : new ApiError(0, 'CONSOLE_ERROR', err instanceof Error ? err.message : String(err));
  $('notice').hidden = true;
  $('error-code').textContent = e.status ? `${e.code} · HTTP ${e.status}` : e.code;
  $('error-text').textContent = e.message;
  $('error').hidden = false;
}

function clearMessages() {
  $('error').hidden = true;
  $('notice').hidden = true;
}

/** @param {string} text */
function notify(text) {
  $('error').hidden = true;
  $('notice').textContent = text;
  $('notice').hidden = false;
}

/**
 * Run an API task, turning failures into the error banner. A 401 means the token is no longer
 * valid: drop it and go back to the sign-in form.
 * @template T
 * @param {() => Promise<T>} task
 * @returns {Promise<T | undefined>}
 */
async function run(task) {
  try {
    return await task();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signOut();
    showError(err);
    return undefined;
  }
}

/** Notice to show once the next navigation has rendered. */
let pendingNotice = '';

/**
 * Go to another view, optionally carrying a notice across (navigation clears the banners).
 * @param {string} hash
 * @param {string} [notice]
 */
function navigate(hash, notice = '') {
  pendingNotice = notice;
  if (location.hash === hash) onHashChange();
  else location.hash = hash;
}

function onHashChange() {
  clearMessages();
  if (pendingNotice) notify(pendingNotice);
  pendingNotice = '';
  route();
}

/** @type {Ctx} */
const ctx = { api: request, run, notify, navigate };

function signOut() {
  session.signOut();
  route();
}

function route() {
  leave();
  leave = () => {};
  const view = $('view');
  view.replaceChildren();
  const signedIn = session.token !== null;
  $('signin').hidden = signedIn;
  $('nav').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  if (!signedIn) {
    /** @type {HTMLInputElement} */ ($('signin-token')).focus();
    return;
  }
  const [path, search = ''] = location.hash.replace(/^#/, '').split('?');
  const [, wanted = 'overview', param] = path.split('/');
  const section = wanted in ROUTES ? wanted : 'overview';
  for (const a of document.querySelectorAll('#nav a')) {
    a.toggleAttribute('aria-current', /** @type {HTMLElement} */ (a).dataset.section === section);
  }
  const [list, one] = ROUTES[section];
  const render = param && one ? one : list;
  leave = render(view, ctx, param ? decodeURIComponent(param) : undefined, new URLSearchParams(search)) || (() => {});
}

$('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('signin-token'));
  const token = input.value.trim();
  if (!token) return;
  clearMessages();
  try {
    // Verify the token before keeping it.
    await request('GET', '/admin/accounts?limit=1', undefined, token);
  } catch (err) {
    showError(err);
    input.select();
    return;
  }
  input.value = '';
  session.signIn(token);
  route();
});

$('sign-out').addEventListener('click', () => {
  clearMessages();
  signOut();
  notify('Signed out. The admin token was removed from this tab.');
});
$('error-close').addEventListener('click', () => ($('error').hidden = true));
window.addEventListener('hashchange', onHashChange);
route();
