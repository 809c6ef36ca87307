// @ts-check
/**
 * Live event tail (#/events?account_id=&type=): long-polls POST /admin/events/tail, which reads
 * the event log (the store), so it shows what every node accepted. Newest first, at most
 * MAX_ROWS kept; a row opens to its payload.
 */
import { EVENT_TYPES, seg } from './api.js';
import { button, h, idText, replace, select, time, typeName } from './dom.js';

const MAX_ROWS = 300;
const WAIT_MS = 20_000;

/**
 * @typedef {{ account_id: string, seq: number, msg_id: string, msg_type: string, source_id: string | null, created_at: string, payload: unknown }} TailEvent
 */

/** @type {import('./app.js').View} */
export function renderTail(root, ctx, _param, query = new URLSearchParams()) {
  const account = select('Account', [['', 'all accounts']], query.get('account_id') ?? '');
  const type = select('Event type', [['', 'all types'], ...EVENT_TYPES], query.get('type') ?? '');
  const status = h('span', { class: 'muted', id: 'tail-status', 'aria-live': 'polite' }, 'Connecting…');
  const rows = h('tbody', {});
  const empty = h('p', { class: 'empty' }, 'Waiting for events…');
  /** @type {Map<string, string>} */
  const names = new Map();
  let paused = false;
  let generation = 0;
  /** @type {AbortController | null} */
  let inflight = null;
  let count = 0;

  const pauseButton = button('Pause', async () => {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) restart(false);
    else {
      inflight?.abort();
      replace(status, 'Paused');
    }
  });

  /** @param {TailEvent} e */
  const row = (e) => {
    const payload = h('pre', { class: 'json' }, JSON.stringify(e.payload, null, 2));
    const details = h('tr', { class: 'payload-row', hidden: true }, h('td', { colspan: '6' }, payload));
    const toggle = h('button', { type: 'button', class: 'ghost small', 'aria-expanded': 'false' }, 'payload');
    toggle.addEventListener('click', () => {
      details.hidden = !details.hidden;
      toggle.setAttribute('aria-expanded', String(!details.hidden));
    });
    const main = h(
      'tr',
      { class: 'event-row', 'data-msg-id': e.msg_id },
      h('td', {}, time(e.created_at)),
      h('td', {}, typeName(e.msg_type)),
      h('td', {}, h('a', { href: `#/accounts/${seg(e.account_id)}`, title: e.account_id }, names.get(e.account_id) ?? e.account_id.slice(0, 8)), h('span', { class: 'muted' }, ` #${e.seq}`)),
      h('td', { class: 'wide' }, idText(e.msg_id, 'msg_id')),
      h('td', { class: 'wide' }, e.source_id ? h('code', { class: 'clip' }, e.source_id) : h('span', { class: 'muted' }, 'default')),
      h('td', {}, h('span', { class: 'actions' }, toggle, h('a', { class: 'button ghost small', href: `#/deliveries?msg_id=${encodeURIComponent(e.msg_id)}` }, 'deliveries'))),
    );
    return [main, details];
  };

  /** @param {TailEvent[]} events oldest first */
  const show = (events) => {
    for (const e of events) {
      rows.prepend(...row(e));
      count++;
    }
    while (rows.children.length > MAX_ROWS * 2) rows.lastElementChild?.remove();
    empty.hidden = rows.children.length > 0;
  };

  /** @param {boolean} clear */
  const restart = (clear) => {
    inflight?.abort();
    if (clear) {
      rows.replaceChildren();
      count = 0;
      empty.hidden = false;
    }
    const mine = ++generation;
    void loop(mine);
  };

  /** @param {number} mine */
  const loop = async (mine) => {
    /** @type {string | undefined} */
    let cursor;
    while (mine === generation && !paused) {
      inflight = new AbortController();
      /** @type {Record<string, unknown>} */
      const body = { wait_ms: cursor ? WAIT_MS : 0, limit: 100 };
      if (cursor) body.cursor = cursor;
      if (account.input.value) body.account_id = account.input.value;
      if (type.input.value) body.types = [type.input.value];
      /** @type {{ events: TailEvent[], cursor: string, accounts_truncated: boolean } | undefined} */
      let data;
      try {
        data = await ctx.api('POST', '/admin/events/tail', body, undefined, inflight.signal);
      } catch (err) {
        if (mine !== generation || paused) return;
        // Show the failure and try again shortly (the server may be restarting).
        await ctx.run(() => Promise.reject(err));
        replace(status, 'Disconnected: retrying in 3 s…');
        await new Promise((r) => setTimeout(r, 3000));
        continue;
      }
      if (mine !== generation || paused || !data) return;
      cursor = data.cursor;
      show(data.events);
      replace(
        status,
        h('span', { class: 'live-dot' }),
        `Live · ${count} event${count === 1 ? '' : 's'} shown · checked ${new Date().toLocaleTimeString()}`,
        data.accounts_truncated ? ' · more accounts than one tail covers: choose an account' : '',
      );
    }
  };

  const onFilter = () => {
    const q = new URLSearchParams();
    if (account.input.value) q.set('account_id', account.input.value);
    if (type.input.value) q.set('type', type.input.value);
    history.replaceState(null, '', `#/events${q.size ? `?${q}` : ''}`);
    restart(true);
  };
  account.input.addEventListener('change', onFilter);
  type.input.addEventListener('change', onFilter);

  replace(
    root,
    h(
      'section',
      { class: 'card', id: 'tail' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Live events'), status),
      h('div', { class: 'filters' }, account.el, type.el, h('div', { class: 'actions' }, pauseButton, button('Clear', async () => (rows.replaceChildren(), (count = 0), (empty.hidden = false))))),
      h(
        'table',
        { id: 'tail-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Accepted'), h('th', {}, 'Type'), h('th', {}, 'Account · seq'), h('th', { class: 'wide' }, 'msg_id'), h('th', { class: 'wide' }, 'Source'), h('th', {}, ''))),
        rows,
      ),
      empty,
    ),
  );

  let left = false;
  void ctx.run(async () => {
    /** @type {{ accounts: import('./api.js').Account[] }} */
    const data = await ctx.api('GET', '/admin/accounts');
    for (const a of data.accounts) {
      const label = a.name || a.partner_id || a.account_id;
      names.set(a.account_id, label);
      account.input.append(h('option', { value: a.account_id }, label));
    }
    account.input.value = query.get('account_id') ?? '';
    for (const link of rows.querySelectorAll('a[title]')) {
      const name = names.get(link.getAttribute('title') ?? '');
      if (name) link.textContent = name;
    }
  }).finally(() => {
    // Start once the account filter from the address can be selected.
    if (!left) restart(true);
  });
  return () => {
    left = true;
    generation++;
    inflight?.abort();
  };
}
