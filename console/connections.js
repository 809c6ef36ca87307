// @ts-check
/**
 * Live connections of every node (GET /admin/connections), refreshed every REFRESH_MS while the
 * view is open. Keys are shown by name and token prefix (GET /admin/api-keys/<id>, cached);
 * Disconnect closes one connection (POST /admin/connections/<id>/disconnect): the client may
 * reconnect, so to keep a partner out deactivate its key instead.
 */
import { EVENT_TYPES, seg } from './api.js';
import { button, h, idText, pill, replace, table, time } from './dom.js';

export const REFRESH_MS = 5000;

/** @typedef {{ name: string | null, token_prefix: string } | null} KeyLabel */

/** @type {import('./app.js').View} */
export function renderConnections(root, ctx) {
  const status = h('span', { class: 'muted' }, 'Loading…');
  const body = h('div', {});
  /** @type {Map<string, Promise<KeyLabel>>} */
  const keys = new Map();
  let busy = false;

  /** @param {string} keyId */
  const keyLabel = (keyId) => {
    if (!keys.has(keyId)) {
      keys.set(
        keyId,
        ctx.api('GET', `/admin/api-keys/${seg(keyId)}`).then(
          (k) => ({ name: k.name, token_prefix: k.token_prefix }),
          () => null,
        ),
      );
    }
    return /** @type {Promise<KeyLabel>} */ (keys.get(keyId));
  };

  /** @param {import('./api.js').Connection} c */
  const disconnect = async (c) => {
    if (!confirm(`Disconnect this connection${c.account_name ? ` of "${c.account_name}"` : ''}?\n\nThe client will probably reconnect; to keep it out, deactivate its API key.`)) return;
    await ctx.run(async () => {
      await ctx.api('POST', `/admin/connections/${seg(c.connection_id)}/disconnect`);
      ctx.notify('Connection closed.');
      await load();
    });
  };

  const load = async () => {
    if (busy) return;
    busy = true;
    try {
      /** @type {{ connections: import('./api.js').Connection[], count: number, nodes?: string[], unreachable_nodes?: number } | undefined} */
      const data = await ctx.run(() => ctx.api('GET', '/admin/connections'));
      if (!data) return;
      const labels = await Promise.all(data.connections.map((c) => (c.key_id ? keyLabel(c.key_id) : Promise.resolve(null))));
      replace(
        status,
        `${data.count} connection${data.count === 1 ? '' : 's'}`,
        data.nodes?.length ? ` on ${data.nodes.join(', ')}` : '',
        data.unreachable_nodes ? ` · ${data.unreachable_nodes} node(s) did not answer` : '',
        ` · updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`,
      );
      const rows = data.connections.map((c, i) => {
        const k = labels[i];
        return [
          c.account_id
            ? h('a', { href: `#/accounts/${encodeURIComponent(c.account_id)}`, title: c.account_id }, c.account_name || '(unnamed)')
            : h('span', { class: 'muted' }, 'not authenticated'),
          c.key_id
            ? k
              ? h('span', { class: 'key', title: `key_id: ${c.key_id}` }, k.name ? h('span', {}, k.name, ' ') : null, h('code', {}, `${k.token_prefix}…`))
              : idText(c.key_id, 'key_id (key removed)')
            : '',
          rooms(c.rooms),
          pill(c.state, c.state === 'authenticated' ? 'ok' : 'muted'),
          time(c.connected_since),
          [String(c.last_seq ?? ''), h('div', { class: 'muted small' }, c.remote_address ?? '')],
          c.node,
          button('Disconnect', () => disconnect(c), 'danger'),
        ];
      });
      replace(body, table(['Account', 'API key', 'Rooms', 'State', ['Connected since', 'wide'], ['Last seq · from', 'wide'], 'Node', ''], rows, 'No live connections.'));
    } finally {
      busy = false;
    }
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
