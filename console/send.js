// @ts-check
/**
 * Send a test event (#/send): a sample payload of the chosen type (GET /admin/samples, from the
 * protocol package), editable, published through the publish API (POST /v1/events) to one
 * account or as a broadcast. The answer links to the event's deliveries and to the live tail.
 */
import { EVENT_TYPES } from './api.js';
import { form, h, replace, select } from './dom.js';

/** @type {import('./app.js').View} */
export function renderSend(root, ctx, _param, query = new URLSearchParams()) {
  const type = select('Event type', [...EVENT_TYPES], query.get('type') ?? 'BID_REQUEST');
  const target = select('Send to', [['', 'choose an account…'], ['*broadcast', 'broadcast: every account that may receive this type']], query.get('account_id') ?? '');
  const payload = /** @type {HTMLTextAreaElement} */ (h('textarea', { rows: '16', spellcheck: 'false', 'aria-label': 'Payload (JSON)', class: 'code' }));
  const result = h('div', { id: 'send-result' });
  /** @type {Record<string, unknown>} */
  let samples = {};

  const fillSample = () => {
    payload.value = JSON.stringify(samples[type.input.value] ?? {}, null, 2);
  };
  type.input.addEventListener('change', fillSample);

  const send = form(
    'stack',
    async () => {
      replace(result);
      if (!target.input.value) {
        await ctx.run(() => Promise.reject(new Error('Choose an account to send to (or broadcast).')));
        return;
      }
      /** @type {unknown} */
      let parsed;
      try {
        parsed = JSON.parse(payload.value);
      } catch (err) {
        await ctx.run(() => Promise.reject(new Error(`The payload is not valid JSON: ${/** @type {Error} */ (err).message}`)));
        return;
      }
      const broadcast = target.input.value === '*broadcast';
      /** @type {{ msg_id: string, recipients: number } | undefined} */
      const answer = await ctx.run(() =>
        ctx.api('POST', '/v1/events', {
          msg_type: type.input.value,
          ...(broadcast ? { broadcast: true } : { account_ids: [target.input.value] }),
          payload: parsed,
          source_id: 'tpx_console',
        }),
      );
      if (!answer) return;
      ctx.notify(`Accepted: ${type.input.value} for ${answer.recipients} recipient${answer.recipients === 1 ? '' : 's'}.`);
      const tailQuery = new URLSearchParams(broadcast ? {} : { account_id: target.input.value });
      replace(
        result,
        h(
          'p',
          { class: 'sent' },
          'msg_id ',
          h('code', { class: 'wrap' }, answer.msg_id),
          ' · ',
          h('a', { href: `#/deliveries?msg_id=${encodeURIComponent(answer.msg_id)}` }, 'its webhook deliveries'),
          ' · ',
          h('a', { href: `#/events${tailQuery.size ? `?${tailQuery}` : ''}` }, 'live events'),
        ),
      );
    },
    h('div', { class: 'row' }, type.el, target.el),
    h('label', {}, 'Payload (JSON, a valid sample of the type: edit freely)', payload),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Send event'), h('button', { type: 'button', class: 'ghost', onclick: fillSample }, 'Reset to sample')),
  );

  replace(
    root,
    h(
      'section',
      { class: 'card', id: 'send' },
      h('h2', {}, 'Send a test event'),
      h('p', { class: 'muted' }, 'Published through the publish API like any platform service (POST /v1/events, source_id tpx_console): it reaches WebSocket connections and webhooks for real.'),
      send,
      result,
    ),
  );

  void ctx.run(async () => {
    const [s, a] = await Promise.all([ctx.api('GET', '/admin/samples'), ctx.api('GET', '/admin/accounts')]);
    samples = s.samples;
    for (const acc of /** @type {import('./api.js').Account[]} */ (a.accounts)) {
      target.input.append(h('option', { value: acc.account_id }, `${acc.name || acc.partner_id || '(unnamed)'} · ${acc.account_id.slice(0, 8)}…`));
    }
    target.input.value = query.get('account_id') ?? '';
    fillSample();
  });
}
