// @ts-check
/** Live connections (GET /admin/connections), refreshed every 5 s while the view is open. */
import { EVENT_TYPES } from './api.js';
import { h, pill, replace, table, time } from './dom.js';

export const REFRESH_MS = 5000;

/** @type {import('./app.js').View} */
export function renderConnections(root, ctx) {
  const status = h('span', { class: 'muted' }, 'Loading…');
  const body = h('div', {});
  let busy = false;

  const load = async () => {
    if (busy) return;
    busy = true;
    /** @type {{ connections: import('./api.js').Connection[], count: number, nodes?: string[] } | undefined} */
    const data = await ctx.run(() => ctx.api('GET', '/admin/connections'));
    busy = false;
    if (!data) return;
    replace(status, `${data.count} connection${data.count === 1 ? '' : 's'}`, data.nodes?.length ? ` on ${data.nodes.join(', ')}` : '', ` · updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`);
    const rows = data.connections.map((c) => [
      c.account_id
        ? [h('a', { href: `#/accounts/${encodeURIComponent(c.account_id)}` }, c.account_name || '(unnamed)'), h('div', { class: 'id' }, c.account_id)]
        : h('span', { class: 'muted' }, 'not authenticated'),
      c.key_id ? h('code', { class: 'id' }, c.key_id) : '',
      rooms(c.rooms),
      pill(c.state, c.state === 'authenticated' ? 'ok' : 'muted'),
      time(c.connected_since),
      String(c.last_seq ?? ''),
      c.remote_address ?? '',
      c.node,
    ]);
    replace(body, table(['Account', 'API key', 'Rooms', 'State', 'Connected since', 'Last seq', 'Remote address', 'Node'], rows, 'No live connections.'));
  };

  replace(
    root,
    h(
      'section',
      { class: 'card', id: 'connections' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Live connections'), status, h('button', { type: 'button', class: 'ghost', onclick: load }, 'Refresh now')),
      body,
    ),
  );
  void load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}

/** @param {string[]} list */
function rooms(list) {
  if (!list.length) return h('span', { class: 'muted' }, 'none');
  if (list.includes('ALL') || list.length >= EVENT_TYPES.length) return pill('ALL', 'ok');
  return h('span', { class: 'rooms' }, list.map((r) => h('code', {}, r)));
}
