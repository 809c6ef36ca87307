// @ts-check
/**
 * Accounts list/create/delete, and one account's page: settings (name, partner id, rooms),
 * API keys, webhook endpoints and webhook deliveries.
 */
import { EVENT_TYPES, seg } from './api.js';
import { button, copy, field, form, h, idText, pill, replace, table, time } from './dom.js';
import { deliveriesTable } from './deliveries.js';

/** @typedef {import('./api.js').Account} Account */
/** @typedef {import('./app.js').Ctx} Ctx */

// ---------------------------------------------------------------- shared pieces

/**
 * Checkboxes for the rooms an account may access, with an "all rooms" toggle.
 * @param {readonly string[]} selected
 * @returns {{ el: HTMLElement, value: () => string[] }}
 */
function roomPicker(selected) {
  const boxes = EVENT_TYPES.map((room) => /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', name: 'room', value: room, checked: selected.includes(room) })));
  const all = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', checked: boxes.every((b) => b.checked) }));
  const sync = () => {
    const n = boxes.filter((b) => b.checked).length;
    all.checked = n === boxes.length;
    all.indeterminate = n > 0 && n < boxes.length;
  };
  sync();
  all.addEventListener('change', () => boxes.forEach((b) => (b.checked = all.checked)));
  boxes.forEach((b) => b.addEventListener('change', sync));
  const el = h(
    'fieldset',
    { class: 'rooms-picker' },
    h('legend', {}, 'Rooms'),
    h('label', { class: 'all' }, all, 'All rooms'),
    h('div', { class: 'grid' }, boxes.map((b) => h('label', {}, b, b.value))),
  );
  return { el, value: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

/** @param {string[]} rooms */
function roomsSummary(rooms) {
  if (rooms.length >= EVENT_TYPES.length) return pill('all rooms', 'ok');
  if (rooms.length === 0) return pill('no rooms', 'warn');
  return h('span', { class: 'rooms' }, rooms.map((r) => h('code', {}, r)));
}

/** Empty string → null (the API's "unset"). @param {HTMLInputElement} input */
const valueOrNull = (input) => input.value.trim() || null;

/** @param {Account} a */
const accountLabel = (a) => a.name || a.partner_id || a.account_id;

// ---------------------------------------------------------------- accounts list

/** @type {import('./app.js').View} */
export function renderAccounts(root, ctx) {
  const list = h('div', { id: 'accounts-list' });
  const name = field('Name', { placeholder: 'Acme Tickets', maxlength: '200' });
  const partner = field('Partner id', { placeholder: 'partner_acme', maxlength: '64', pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]*' });
  let picker = roomPicker(EVENT_TYPES);
  const pickerSlot = h('div', {}, picker.el);

  const load = async () => {
    /** @type {{ accounts: Account[] } | undefined} */
    const data = await ctx.run(() => ctx.api('GET', '/admin/accounts'));
    if (!data) return;
    const rows = data.accounts.map((a) => [
      h('a', { href: `#/accounts/${seg(a.account_id)}`, class: 'strong' }, a.name || '(unnamed)'),
      a.partner_id ? h('code', { class: 'wrap-any' }, a.partner_id) : h('span', { class: 'muted' }, '—'),
      roomsSummary(a.rooms),
      idText(a.account_id, 'account_id'),
      time(a.created_at),
      h(
        'span',
        { class: 'actions' },
        h('a', { href: `#/accounts/${seg(a.account_id)}`, class: 'button ghost' }, 'Open'),
        button('Delete', () => deleteAccount(ctx, a, (notice) => (ctx.notify(notice), load())), 'danger'),
      ),
    ]);
    replace(list, h('h2', {}, `Accounts (${data.accounts.length})`), table(['Name', 'Partner id', 'Rooms', ['Account id', 'wide'], ['Created', 'wide'], ''], rows, 'No accounts yet: create the first one.'));
  };

  const create = form(
    'stack',
    async () => {
      /** @type {Account | undefined} */
      const account = await ctx.run(() => ctx.api('POST', '/admin/accounts', { name: valueOrNull(name.input), partner_id: valueOrNull(partner.input), rooms: picker.value() }));
      if (!account) return;
      ctx.notify(`Account "${accountLabel(account)}" created.`);
      name.input.value = '';
      partner.input.value = '';
      picker = roomPicker(EVENT_TYPES);
      replace(pickerSlot, picker.el);
      await load();
    },
    h('div', { class: 'row' }, name.el, partner.el),
    pickerSlot,
    h('button', { type: 'submit' }, 'Create account'),
  );

  replace(root, h('div', { class: 'layout' }, h('section', { class: 'card', id: 'accounts' }, list), h('section', { class: 'card side' }, h('h2', {}, 'New account'), create)));
  void load();
}

/**
 * @param {Ctx} ctx
 * @param {Account} a
 * @param {(notice: string) => unknown} after called with the notice to show
 */
async function deleteAccount(ctx, a, after) {
  const label = accountLabel(a);
  if (!confirm(`Delete account "${label}"?\n\nIts API keys, webhooks and deliveries are deleted and its live connections are closed. This cannot be undone.`)) return;
  const done = await ctx.run(async () => (await ctx.api('DELETE', `/admin/accounts/${seg(a.account_id)}`), true));
  if (done) await after(`Account "${label}" deleted.`);
}

// ---------------------------------------------------------------- one account

/** @type {import('./app.js').View} */
export function renderAccount(root, ctx, accountId = '') {
  const id = seg(accountId);
  const title = h('h1', {}, 'Account');
  const settings = h('section', { class: 'card', id: 'settings' });
  const keys = h('section', { class: 'card', id: 'keys' });
  const webhooks = h('section', { class: 'card', id: 'webhooks' });
  const deliveries = h('section', { class: 'card', id: 'deliveries' });
  replace(root, h('a', { href: '#/accounts', class: 'back' }, '← All accounts'), title, settings, keys, webhooks, deliveries);

  void ctx.run(async () => {
    /** @type {Account} */
    const account = await ctx.api('GET', `/admin/accounts/${id}`);
    replace(title, account.name || '(unnamed account)', ' ', idText(account.account_id, 'account_id'));
    settingsCard(settings, ctx, account, (a) => replace(title, a.name || '(unnamed account)', ' ', idText(a.account_id, 'account_id')));
    keysCard(keys, ctx, id);
    webhooksCard(webhooks, ctx, id);
    deliveriesCard(deliveries, ctx, id);
  });
}

/**
 * @param {HTMLElement} card
 * @param {Ctx} ctx
 * @param {Account} account
 * @param {(a: Account) => void} onSaved
 */
function settingsCard(card, ctx, account, onSaved) {
  const name = field('Name', { value: account.name ?? '', maxlength: '200' });
  const partner = field('Partner id', { value: account.partner_id ?? '', maxlength: '64' });
  const picker = roomPicker(account.rooms);
  const save = form(
    'stack',
    async () => {
      /** @type {Account | undefined} */
      const updated = await ctx.run(() =>
        ctx.api('PATCH', `/admin/accounts/${seg(account.account_id)}`, { name: valueOrNull(name.input), partner_id: valueOrNull(partner.input), rooms: picker.value() }),
      );
      if (!updated) return;
      onSaved(updated);
      ctx.notify('Account saved. Live connections now see the new rooms.');
    },
    h('div', { class: 'row' }, name.el, partner.el),
    picker.el,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit' }, 'Save'),
      button('Delete account', () => deleteAccount(ctx, account, (notice) => ctx.navigate('#/accounts', notice)), 'danger'),
    ),
  );
  replace(card, h('h2', {}, 'Settings'), h('p', { class: 'muted' }, 'Created ', time(account.created_at)), save);
}

// ---------------------------------------------------------------- API keys

/**
 * @param {HTMLElement} card
 * @param {Ctx} ctx
 * @param {string} id account id, URL-encoded
 */
function keysCard(card, ctx, id) {
  const list = h('div', {});
  const reveal = h('div', {});
  const name = field('Key name (optional)', { placeholder: 'production', maxlength: '200' });
  const expires = field('Expires (optional)', { type: 'datetime-local' });

  const load = async () => {
    /** @type {{ api_keys: import('./api.js').ApiKey[] } | undefined} */
    const data = await ctx.run(() => ctx.api('GET', `/admin/accounts/${id}/api-keys`));
    if (!data) return;
    const rows = data.api_keys.map((k) => {
      const active = k.status === 'active';
      const expired = k.expires_at !== null && Date.parse(k.expires_at) <= Date.now();
      const act = (/** @type {string} */ verb, /** @type {string} */ done) =>
        ctx.run(async () => {
          await ctx.api('POST', `/admin/api-keys/${seg(k.key_id)}/${verb}`);
          ctx.notify(done);
          await load();
        });
      return [
        k.name || h('span', { class: 'muted' }, '(unnamed)'),
        h('code', {}, `${k.token_prefix}…`),
        expired ? pill('expired', 'bad') : pill(k.status, active ? 'ok' : 'warn'),
        time(k.created_at),
        time(k.last_used_at),
        time(k.expires_at),
        h(
          'span',
          { class: 'actions' },
          active
            ? button('Deactivate', () => act('deactivate', `Key ${k.token_prefix}… deactivated; its connections were closed.`))
            : button('Activate', () => act('activate', `Key ${k.token_prefix}… activated.`)),
          button(
            'Revoke',
            async () => {
              if (!confirm(`Revoke key ${k.token_prefix}… for good?\n\nIts connections are closed and the token can never be used again.`)) return;
              await ctx.run(async () => {
                await ctx.api('DELETE', `/admin/api-keys/${seg(k.key_id)}`);
                ctx.notify(`Key ${k.token_prefix}… revoked.`);
                await load();
              });
            },
            'danger',
          ),
        ),
      ];
    });
    replace(list, table(['Name', 'Token', 'Status', 'Created', 'Last used', 'Expires', ''], rows, 'No API keys yet.'));
  };

  const create = form(
    'row end',
    async () => {
      const expiresAt = expires.input.value ? new Date(expires.input.value).toISOString() : null;
      /** @type {{ key_id: string, token: string } | undefined} */
      const key = await ctx.run(() => ctx.api('POST', `/admin/accounts/${id}/api-keys`, { name: valueOrNull(name.input), expires_at: expiresAt }));
      if (!key) return;
      name.input.value = '';
      expires.input.value = '';
      replace(reveal, tokenBox(key.token, () => replace(reveal)));
      await load();
    },
    name.el,
    expires.el,
    h('button', { type: 'submit' }, 'Create API key'),
  );
  replace(card, h('h2', {}, 'API keys'), create, reveal, list);
  void load();
}

/**
 * The one-time display of a new token.
 * @param {string} token
 * @param {() => void} dismiss
 */
function tokenBox(token, dismiss) {
  const input = /** @type {HTMLInputElement} */ (h('input', { type: 'text', readonly: true, value: token, class: 'secret', 'aria-label': 'New API key token', spellcheck: 'false' }));
  const copied = h('span', { class: 'muted', 'aria-live': 'polite' });
  return h(
    'div',
    { class: 'token-box', id: 'new-token' },
    h('p', { class: 'warn' }, h('strong', {}, 'Copy this token now.'), ' It is shown only once: the server stores only its hash and cannot show it again.'),
    h(
      'div',
      { class: 'row' },
      input,
      button('Copy', async () => replace(copied, (await copy(token, input)) ? 'Copied.' : 'Selected: press Ctrl+C.'), ''),
      button('I have stored it', async () => dismiss()),
    ),
    copied,
  );
}

// ---------------------------------------------------------------- webhooks

/**
 * @param {HTMLElement} card
 * @param {Ctx} ctx
 * @param {string} id account id, URL-encoded
 */
function webhooksCard(card, ctx, id) {
  const list = h('div', {});
  const url = field('Endpoint URL', { type: 'url', placeholder: 'https://partner.example/tpx/webhooks', required: true });
  const description = field('Description (optional)', { maxlength: '500' });

  const load = async () => {
    /** @type {{ webhooks: import('./api.js').Webhook[] } | undefined} */
    const data = await ctx.run(() => ctx.api('GET', `/admin/accounts/${id}/webhooks`));
    if (!data) return;
    const rows = data.webhooks.map((w) => {
      const path = `/admin/webhooks/${seg(w.webhook_id)}`;
      const change = (/** @type {string} */ method, /** @type {string} */ sub, /** @type {unknown} */ body, /** @type {string} */ done) =>
        ctx.run(async () => {
          await ctx.api(method, path + sub, body);
          ctx.notify(done);
          await load();
        });
      return [
        [h('code', { class: 'url' }, w.url), w.description ? h('div', { class: 'muted' }, w.description) : null],
        [
          w.enabled ? pill('enabled', 'ok') : pill('disabled', 'warn'),
          w.disabled_reason ? h('div', { class: 'muted' }, w.disabled_reason) : null,
          w.failing_since ? h('div', { class: 'bad-text' }, 'failing since ', time(w.failing_since)) : null,
        ],
        [
          h('details', {}, h('summary', {}, 'show secret'), h('code', { class: 'secret' }, w.secret)),
          w.previous_secret_expires_at ? h('div', { class: 'muted' }, 'previous secret valid until ', time(w.previous_secret_expires_at)) : null,
        ],
        time(w.created_at),
        h(
          'span',
          { class: 'actions' },
          w.enabled
            ? button('Disable', () => change('PATCH', '', { enabled: false }, 'Webhook disabled: pending deliveries wait for it; new events are not delivered to it until it is enabled again.'))
            : button('Enable', () => change('PATCH', '', { enabled: true }, 'Webhook enabled.')),
          button('Rotate secret', async () => {
            if (!confirm('Rotate the signing secret?\n\nThe previous secret keeps signing alongside the new one during the grace period, so the partner can switch over.')) return;
            await change('POST', '/rotate-secret', {}, 'Secret rotated: give the partner the new secret (under "show secret").');
          }),
          button(
            'Remove',
            async () => {
              if (!confirm(`Remove the webhook endpoint ${w.url}?\n\nIts pending deliveries are dropped.`)) return;
              await change('DELETE', '', undefined, 'Webhook removed.');
            },
            'danger',
          ),
        ),
      ];
    });
    replace(list, table(['Endpoint', 'Status', 'Signing secret', 'Created', ''], rows, 'No webhook endpoints.'));
  };

  const add = form(
    'row end',
    async () => {
      const created = await ctx.run(() => ctx.api('POST', `/admin/accounts/${id}/webhooks`, { url: url.input.value.trim(), description: valueOrNull(description.input) }));
      if (!created) return;
      url.input.value = '';
      description.input.value = '';
      ctx.notify('Webhook added. Its signing secret is under "show secret".');
      await load();
    },
    url.el,
    description.el,
    h('button', { type: 'submit' }, 'Add webhook'),
  );
  replace(card, h('h2', {}, 'Webhooks'), add, list);
  void load();
}

// ---------------------------------------------------------------- deliveries

/**
 * The account's deliveries (the full search is the Deliveries view).
 * @param {HTMLElement} card
 * @param {Ctx} ctx
 * @param {string} id account id, URL-encoded
 */
function deliveriesCard(card, ctx, id) {
  const list = h('div', {});
  const status = /** @type {HTMLSelectElement} */ (
    h('select', {}, h('option', { value: '' }, 'all'), ['pending', 'succeeded', 'failed'].map((s) => h('option', { value: s }, s)))
  );

  const load = async () => {
    const q = new URLSearchParams({ account_id: decodeURIComponent(id), limit: '200' });
    if (status.value) q.set('status', status.value);
    /** @type {{ deliveries: import('./api.js').Delivery[] } | undefined} */
    const data = await ctx.run(() => ctx.api('GET', `/admin/deliveries?${q}`));
    if (!data) return;
    replace(list, await deliveriesTable(ctx, data.deliveries, load, { account: false }));
  };

  const retryAll = button('Retry all failed', () =>
    ctx.run(async () => {
      /** @type {{ retried: number }} */
      const r = await ctx.api('POST', `/admin/accounts/${id}/deliveries/retry`, {});
      ctx.notify(r.retried ? `${r.retried} failed deliver${r.retried === 1 ? 'y' : 'ies'} queued again.` : 'No failed deliveries to retry.');
      await load();
    }),
  );
  status.addEventListener('change', () => void load());
  replace(
    card,
    h(
      'div',
      { class: 'card-head' },
      h('h2', {}, 'Webhook deliveries'),
      h('label', { class: 'inline' }, 'Status ', status),
      button('Refresh', load),
      retryAll,
      h('a', { class: 'button ghost', href: `#/deliveries?account_id=${id}` }, 'Search all'),
    ),
    list,
  );
  void load();
}
