// @ts-check
/**
 * Webhook deliveries: the search view (#/deliveries?account_id=&status=&msg_id=&msg_type=&webhook_id=),
 * one delivery's detail (#/deliveries/<id>: the request sent, every attempt, retry now), and the
 * table the account page shares.
 */
import { EVENT_TYPES, seg } from './api.js';
import { button, deliveryPill, field, form, h, idText, replace, select, table, time, typeName } from './dom.js';

/** @typedef {import('./app.js').Ctx} Ctx */
/** @typedef {import('./api.js').Delivery} Delivery */

/** Endpoint URL by webhook id, for deliveries listed without `webhook_url` (older servers). */
const endpointUrls = new Map();

/**
 * @param {Ctx} ctx
 * @param {Delivery} d
 * @returns {Promise<string | null>}
 */
async function endpointOf(ctx, d) {
  if (d.webhook_url) return d.webhook_url;
  if (!endpointUrls.has(d.webhook_id)) {
    endpointUrls.set(
      d.webhook_id,
      ctx.api('GET', `/admin/webhooks/${seg(d.webhook_id)}`).then(
        (w) => /** @type {string} */ (w.url),
        () => null,
      ),
    );
  }
  return endpointUrls.get(d.webhook_id);
}

/**
 * The endpoint a delivery went to: its URL on one line (cut when long, full on hover).
 * @param {string | null} url
 * @param {string} webhookId
 */
function endpointCell(url, webhookId) {
  if (!url) return idText(webhookId, 'webhook_id (endpoint removed)');
  // Break opportunities after each "/" so a narrow column wraps between host and path.
  const parts = shortUrl(url).split('/');
  return h('code', { class: 'url-cell', title: `${url}\nwebhook_id: ${webhookId}` }, parts.flatMap((p, i) => (i < parts.length - 1 ? [`${p}/`, h('wbr', {})] : [p])));
}

/**
 * What tells endpoints apart in little space: host and the end of the path, without the scheme
 * (`partner.example/…/tpx-hook`); the whole URL is the tooltip.
 * @param {string} url
 */
export function shortUrl(url) {
  try {
    const u = new URL(url);
    const parts = u.pathname.split('/').filter(Boolean);
    const path = parts.length > 1 ? `/…/${parts.at(-1)}` : u.pathname === '/' ? '' : u.pathname;
    return `${u.host}${path}${u.search ? '?…' : ''}`;
  } catch {
    return url;
  }
}

/**
 * Retry one delivery now (any status: a pending one skips its wait; a succeeded one is replayed).
 * @param {Ctx} ctx
 * @param {Delivery} d
 * @param {() => Promise<unknown>} after
 */
function retryButton(ctx, d, after) {
  return button(d.status === 'pending' ? 'Retry now' : 'Retry', () =>
    ctx.run(async () => {
      await ctx.api('POST', `/admin/deliveries/${seg(d.delivery_id)}/retry`);
      ctx.notify(`Delivery of ${d.msg_type} #${d.seq} queued ${d.status === 'pending' ? 'for now' : 'again'}.`);
      await after();
    }),
  );
}

/**
 * Deliveries as a table with the endpoint of each.
 * @param {Ctx} ctx
 * @param {Delivery[]} deliveries
 * @param {() => Promise<unknown>} reload
 * @param {{ account?: boolean, accountNames?: Map<string, string> }} [opts] account: show the account column
 */
export async function deliveriesTable(ctx, deliveries, reload, opts = {}) {
  const urls = await Promise.all(deliveries.map((d) => endpointOf(ctx, d)));
  const rows = deliveries.map((d, i) => [
    time(d.created_at),
    [typeName(d.msg_type), h('span', { class: 'muted' }, ` #${d.seq}`)],
    opts.account
      ? h('a', { href: `#/accounts/${seg(d.account_id)}`, title: d.account_id }, opts.accountNames?.get(d.account_id) || idText(d.account_id, 'account_id'))
      : null,
    endpointCell(urls[i], d.webhook_id),
    deliveryPill(d.status),
    String(d.attempt_count),
    [d.last_status_code !== null ? h('code', {}, String(d.last_status_code)) : null, d.last_error ? h('div', { class: 'muted clip', title: d.last_error }, d.last_error) : null],
    d.status === 'pending' ? time(d.next_attempt_at) : time(d.completed_at),
    idText(d.msg_id, 'msg_id'),
    h('span', { class: 'actions stacked' }, h('a', { class: 'button ghost', href: `#/deliveries/${seg(d.delivery_id)}` }, 'Open'), retryButton(ctx, d, reload)),
  ]);
  /** @type {Array<string | [string, string]>} */
  const headers = ['Created', 'Event', 'Account', 'Endpoint', 'Status', ['Tries', 'wide'], 'Last result', ['Next / done', 'wide'], ['msg_id', 'wide'], ''];
  if (!opts.account) {
    headers.splice(2, 1);
    rows.forEach((r) => r.splice(2, 1));
  }
  return table(headers, rows, 'No deliveries match.');
}

// ---------------------------------------------------------------- search view

/** @type {import('./app.js').View} */
export function renderDeliveries(root, ctx, _param, query = new URLSearchParams()) {
  const list = h('div', {});
  const account = select('Account', [['', 'all accounts']], query.get('account_id') ?? '');
  const status = select('Status', [['', 'any'], 'pending', 'succeeded', 'failed'], query.get('status') ?? '');
  const type = select('Event type', [['', 'any'], ...EVENT_TYPES], query.get('msg_type') ?? '');
  const msgId = field('msg_id', { placeholder: 'exact msg_id', value: query.get('msg_id') ?? '', maxlength: '64' });
  const webhookId = field('Endpoint (webhook id)', { placeholder: 'any', value: query.get('webhook_id') ?? '', maxlength: '64' });
  /** @type {Map<string, string>} */
  const accountNames = new Map();

  const current = () => {
    const q = new URLSearchParams();
    for (const [k, input] of /** @type {const} */ ([
      ['account_id', account.input],
      ['status', status.input],
      ['msg_type', type.input],
      ['msg_id', msgId.input],
      ['webhook_id', webhookId.input],
    ])) {
      if (input.value.trim()) q.set(k, input.value.trim());
    }
    return q;
  };

  const load = async () => {
    const q = current();
    q.set('limit', '200');
    /** @type {{ deliveries: Delivery[] } | undefined} */
    const data = await ctx.run(() => ctx.api('GET', `/admin/deliveries?${q}`));
    if (!data) return;
    // The account column only when the list is not of one account already.
    replace(list, await deliveriesTable(ctx, data.deliveries, load, { account: !q.get('account_id'), accountNames }));
  };

  const search = form(
    'filters',
    async () => {
      // The filters live in the address, so a search can be bookmarked or linked (send-test-event does).
      const q = current();
      history.replaceState(null, '', `#/deliveries${q.size ? `?${q}` : ''}`);
      await load();
    },
    account.el,
    status.el,
    type.el,
    msgId.el,
    webhookId.el,
    h('button', { type: 'submit' }, 'Search'),
  );

  replace(root, h('section', { class: 'card', id: 'delivery-search' }, h('div', { class: 'card-head' }, h('h2', {}, 'Webhook deliveries'), button('Refresh', load)), search, list));

  // The first search waits for the account list, so an account_id from the address is selected
  // (and applied) rather than silently dropped by a select that has no such option yet.
  void ctx
    .run(async () => {
      /** @type {{ accounts: import('./api.js').Account[] }} */
      const data = await ctx.api('GET', '/admin/accounts');
      for (const a of data.accounts) {
        accountNames.set(a.account_id, a.name || a.partner_id || a.account_id);
        account.input.append(h('option', { value: a.account_id }, a.name || a.partner_id || a.account_id));
      }
      account.input.value = query.get('account_id') ?? '';
    })
    .finally(() => void load());
}

// ---------------------------------------------------------------- one delivery

/**
 * @typedef {{ attempt_id: string, attempted_at: string, status_code: number | null, latency_ms: number,
 *             error: string | null, outcome: string, response_excerpt?: string | null }} Attempt
 * @typedef {{ url: string, headers: Record<string, string>, body: string }} SentRequest
 */

/** @type {import('./app.js').View} */
export function renderDelivery(root, ctx, deliveryId = '') {
  const body = h('div', {});
  replace(root, h('a', { href: '#/deliveries', class: 'back' }, '← All deliveries'), h('h1', {}, 'Delivery ', idText(deliveryId, 'delivery_id')), body);

  const load = async () => {
    /** @type {any} */
    const data = await ctx.run(() => ctx.api('GET', `/admin/deliveries/${seg(deliveryId)}`));
    if (!data) return;
    // { delivery, attempts, request } (current API); older servers answered the delivery with `attempts` inside.
    /** @type {Delivery} */
    const d = data.delivery ?? data;
    /** @type {Attempt[]} */
    const attempts = data.attempts ?? [];
    /** @type {SentRequest | undefined} */
    const sent = data.request;
    const url = await endpointOf(ctx, d);
    /** @type {string | null} */
    const accountName = await ctx.api('GET', `/admin/accounts/${seg(d.account_id)}`).then(
      (a) => a.name || a.partner_id || null,
      () => null,
    );

    const summary = h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Status'),
      h('dd', {}, deliveryPill(d.status), d.status === 'pending' && d.next_attempt_at ? [' next attempt ', time(d.next_attempt_at)] : null),
      h('dt', {}, 'Event'),
      h('dd', {}, typeName(d.msg_type), ` #${d.seq} `, idText(d.msg_id, 'msg_id')),
      h('dt', {}, 'Endpoint'),
      h('dd', {}, endpointCell(url, d.webhook_id)),
      h('dt', {}, 'Account'),
      h('dd', {}, accountName ? [h('a', { href: `#/accounts/${seg(d.account_id)}` }, accountName), ' '] : null, idText(d.account_id, 'account_id')),
      h('dt', {}, 'Created'),
      h('dd', {}, time(d.created_at)),
      h('dt', {}, 'Completed'),
      h('dd', {}, time(d.completed_at)),
      h('dt', {}, 'Attempts'),
      h('dd', {}, String(d.attempt_count)),
    );

    const attemptRows = attempts.map((a, i) => [
      String(i + 1),
      time(a.attempted_at),
      a.status_code !== null ? h('code', {}, String(a.status_code)) : h('span', { class: 'muted' }, '—'),
      `${Math.round(a.latency_ms)} ms`,
      h('span', { class: `outcome ${a.outcome}` }, a.outcome),
      // Both when both exist: a 503's error line and what the endpoint answered with it.
      a.error || a.response_excerpt
        ? [a.error ? h('div', { class: 'bad-text wrap' }, a.error) : null, a.response_excerpt ? h('div', {}, h('div', { class: 'muted small' }, 'response body'), h('pre', { class: 'excerpt', 'aria-label': 'Response body excerpt' }, a.response_excerpt)) : null]
        : h('span', { class: 'muted' }, '—'),
    ]);

    const request = sent
      ? [
          h('p', {}, h('code', { class: 'wrap' }, `POST ${sent.url}`)),
          table(
            ['Header', 'Value'],
            Object.entries(sent.headers).map(([k, v]) => [h('code', {}, k), h('code', { class: 'wrap' }, v)]),
          ),
          h('h3', { class: 'sub' }, 'Body'),
          h('pre', { class: 'json', 'aria-label': 'Request body' }, pretty(sent.body)),
        ]
      : h('p', { class: 'muted' }, 'This server does not report the request of a delivery.');

    replace(
      body,
      h('section', { class: 'card', id: 'delivery' }, h('div', { class: 'card-head' }, h('h2', {}, 'Summary'), retryButton(ctx, d, load), button('Refresh', load)), summary),
      h('section', { class: 'card', id: 'attempts' }, h('h2', {}, `Attempts (${attempts.length})`), table(['#', 'When', 'HTTP status', 'Duration', 'Outcome', 'Error or response'], attemptRows, 'No attempt yet.')),
      h('section', { class: 'card', id: 'request' }, h('h2', {}, 'Request sent'), request),
    );
  };
  void load();
}

/**
 * Indent a JSON body for reading; anything else as is.
 * @param {string} text
 */
function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
