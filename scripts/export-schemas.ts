/**
 * Write the protocol's JSON Schemas to docs/schemas/<name>.json and the AsyncAPI 3.0 document of
 * the /ws channel to docs/asyncapi.yaml (generated, so both stay in sync with packages/protocol).
 * Run: `npm run schema` (or `npx tsx --conditions=tpx-source scripts/export-schemas.ts [docsDir]`, default docs).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloseCode, ErrorCode, EVENT_TYPES } from '@tpx-realtime/protocol';
import { CLIENT_MESSAGE_SCHEMA_NAMES, protocolJsonSchemas, SERVER_FRAME_SCHEMA_NAMES } from '@tpx-realtime/protocol/json-schema';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const docsDir = path.resolve(root, process.argv[2] ?? 'docs');
const schemaDir = path.join(docsDir, 'schemas');

// ---------------------------------------------------------------------------------------------
// Minimal YAML emitter (block style; strings always JSON-quoted, which is valid YAML).
// ---------------------------------------------------------------------------------------------
type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };
function scalar(v: string | number | boolean | null): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}
function key(k: string): string {
  return /^[A-Za-z_$][\w$.-]*$/.test(k) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(k) ? k : JSON.stringify(k);
}
function toYaml(v: Yaml, indent = ''): string {
  if (v === null || typeof v !== 'object') return `${scalar(v)}\n`;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]\n';
    return v
      .map((item) => {
        if (item !== null && typeof item === 'object' && !(Array.isArray(item) && item.length === 0) && Object.keys(item).length) {
          const body = toYaml(item, `${indent}  `);
          return `${indent}- ${body.slice(indent.length + 2)}`;
        }
        return `${indent}- ${toYaml(item, `${indent}  `)}`;
      })
      .join('');
  }
  const entries = Object.entries(v);
  if (entries.length === 0) return '{}\n';
  return entries
    .map(([k, val]) => {
      if (val !== null && typeof val === 'object' && (Array.isArray(val) ? val.length : Object.keys(val).length)) {
        return `${indent}${key(k)}:\n${toYaml(val, `${indent}  `)}`;
      }
      return `${indent}${key(k)}: ${toYaml(val, `${indent}  `)}`;
    })
    .join('');
}

// ---------------------------------------------------------------------------------------------
// AsyncAPI 3.0 document
// ---------------------------------------------------------------------------------------------
const SCHEMA_FORMAT = 'application/schema+json;version=draft-07';
const ref = (p: string) => ({ $ref: p });
const schemaRef = (name: string) => ({ schemaFormat: SCHEMA_FORMAT, schema: ref(`./schemas/${name}.json`) });

const CLOSE_CODE_TEXT: Record<number, string> = {
  1000: 'normal closure',
  1001: 'server shutting down: reconnect (possibly to another node) and resume with after_seq',
  1008: 'policy violation: rate limited (RATE_LIMITED)',
  1009: 'inbound frame above the size limit (TPX_MAX_MESSAGE_BYTES, default 64 KiB)',
  4001: 'authentication failed, or the API key was deactivated, revoked or expired: do not reconnect with the same key',
  4002: 'not authenticated within the auth timeout (TPX_AUTH_TIMEOUT_MS, default 10 s)',
  4003: 'keepalive timeout: no pong within TPX_PONG_TIMEOUT_MS after a server ping',
  4009: 'slow consumer: outbound buffer limit reached; reconnect and resume with after_seq',
};
const WS_ERROR_CODES = [
  ErrorCode.AUTH_INVALID_API_KEY,
  ErrorCode.AUTH_API_KEY_INACTIVE,
  ErrorCode.AUTH_API_KEY_EXPIRED,
  ErrorCode.AUTH_REQUIRED,
  ErrorCode.NO_VALID_ROOMS,
  ErrorCode.INVALID_ROOM,
  ErrorCode.INVALID_MESSAGE,
  ErrorCode.INVALID_JSON,
  ErrorCode.RATE_LIMITED,
];
/** What an SSE stream can carry as `event: error` (SPEC §2.10): revocation, and the slow-consumer end. */
const SSE_ERROR_CODES = [ErrorCode.AUTH_INVALID_API_KEY, ErrorCode.AUTH_API_KEY_INACTIVE, ErrorCode.AUTH_API_KEY_EXPIRED, ErrorCode.SLOW_CONSUMER];
/** HTTP answers of GET /v1/events/stream before any stream starts. */
const SSE_REFUSALS = [
  { status: 400, codes: [ErrorCode.INVALID_ROOM, ErrorCode.NO_VALID_ROOMS, ErrorCode.VALIDATION_FAILED], meaning: 'unknown room names (listed in rooms), no accessible room, or a Last-Event-ID/after_seq that is not a seq' },
  { status: 401, codes: [ErrorCode.AUTH_INVALID_API_KEY, ErrorCode.AUTH_API_KEY_EXPIRED], meaning: 'missing, unknown or expired key' },
  { status: 403, codes: [ErrorCode.AUTH_API_KEY_INACTIVE], meaning: 'the key was deactivated' },
  { status: 503, codes: [ErrorCode.UNAVAILABLE], meaning: 'the server is draining (shutting down): reconnect, another node answers' },
];

const sentAt = { type: 'integer', minimum: 0, description: 'Server send time, epoch milliseconds' };

function asyncApi(): Yaml {
  const messages: Record<string, Yaml> = {};
  const schemas: Record<string, Yaml> = {};

  // Client → server
  const clientNames = CLIENT_MESSAGE_SCHEMA_NAMES.filter((n) => n !== 'ClientMessage');
  const clientMsgType: Record<string, string> = {
    AuthenticateMessage: 'authenticate',
    SubscribeMessage: 'subscribe',
    UnsubscribeMessage: 'unsubscribe',
    PingMessage: 'ping',
    PongMessage: 'pong',
  };
  const clientSummary: Record<string, string> = {
    AuthenticateMessage: 'Authenticate the connection with an API key (tp_live_…).',
    SubscribeMessage: 'Add rooms; optional after_seq resumes the account stream after that seq.',
    UnsubscribeMessage: 'Remove rooms (extension).',
    PingMessage: 'Client-initiated liveness check; the server answers pong (extension).',
    PongMessage: "Answer to the server's ping.",
  };
  for (const name of clientNames) {
    messages[`client_${clientMsgType[name]}`] = {
      name: clientMsgType[name]!,
      title: name,
      summary: clientSummary[name]!,
      contentType: 'application/json',
      payload: schemaRef(name),
    };
  }

  // Server → client control frames (schemas generated from packages/protocol/src/server-messages.ts)
  const control: [string, (typeof SERVER_FRAME_SCHEMA_NAMES)[number], string][] = [
    ['server_authenticated', 'AuthenticatedFrame', 'The connection is authenticated.'],
    [
      'server_subscribed',
      'SubscribedFrame',
      'Rooms subscribed. last_seq is the account’s newest seq at that moment: a client with no saved position resumes from it. ' +
        'With after_seq, replay of stored events follows (resumed_from echoes it; gap names a pruned range), then live events.',
    ],
    ['server_unsubscribed', 'UnsubscribedFrame', 'Rooms removed.'],
    [
      'server_gap',
      'GapFrame',
      'Seqs from_seq..to_seq will never be delivered (pruned while a replay was running); sent at that point of the stream. A skip is never silent.',
    ],
    ['server_ping', 'ServerPingFrame', 'Sent every ping interval (default 30 s); answer with pong within the pong timeout or the connection closes with 4003.'],
    ['server_pong', 'ServerPongFrame', 'Answer to a client ping.'],
    ['server_error', 'ErrorFrame', 'An error; auth errors are followed by close 4001, INVALID_JSON/INVALID_MESSAGE leave the connection usable.'],
  ];
  for (const [, name] of control) schemas[name] = ref(`./schemas/${name}.json`);
  for (const [id, schema, summary] of control) {
    messages[id] = {
      name: id.replace('server_', ''),
      title: schema,
      summary,
      contentType: 'application/json',
      payload: ref(`#/components/schemas/${schema}`),
    };
  }

  // Server → client event frames
  for (const type of EVENT_TYPES) {
    schemas[`${type}_Frame`] = {
      type: 'object',
      required: ['msg_type', 'msg_id', 'seq', 'sent_at', 'payload'],
      properties: {
        msg_type: { type: 'string', const: type },
        msg_id: { type: 'string', format: 'uuid', description: 'Same id as the webhook delivery of this event (de-duplication key)' },
        seq: { type: 'integer', minimum: 1, description: "Strictly increasing within the receiving account's stream" },
        sent_at: sentAt,
        payload: ref(`./schemas/${type}.json`),
      },
    };
    messages[`event_${type}`] = {
      name: type,
      title: `${type} event`,
      summary: `Delivered to connections subscribed to the ${type} room or ALL.`,
      contentType: 'application/json',
      payload: ref(`#/components/schemas/${type}_Frame`),
    };
  }

  const clientIds = clientNames.map((n) => `client_${clientMsgType[n]}`);
  const serverIds = [...control.map((c) => c[0]), ...EVENT_TYPES.map((t) => `event_${t}`)];
  const closeCodes = Object.values(CloseCode).map((code) => ({ code, meaning: CLOSE_CODE_TEXT[code] ?? '' }));

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'TPX realtime gateway',
      version: '0.1.0',
      description:
        'WebSocket push of TPX partner events (SPEC.md §2), and the same stream as Server-Sent Events (channel sse, SPEC.md §2.10). Every frame is one UTF-8 JSON text frame ' +
        '`{ "msg_type", "payload" }`; server frames also carry `sent_at` (epoch ms). Event payload schemas are generated ' +
        'from packages/protocol/src/events.ts (JSON Schema draft 2020-12, docs/schemas/). Regenerate with `npm run schema`.\n\n' +
        'Close codes:\n' +
        closeCodes.map((c) => `- ${c.code}: ${c.meaning}`).join('\n'),
    },
    defaultContentType: 'application/json',
    servers: {
      production: { host: 'tpx.example.com', protocol: 'wss', description: 'Behind TLS' },
      local: { host: 'localhost:8080', protocol: 'ws', description: 'tpx serve defaults' },
      productionHttps: { host: 'tpx.example.com', protocol: 'https', description: 'Server-Sent Events, behind TLS' },
      localHttp: { host: 'localhost:8080', protocol: 'http', description: 'Server-Sent Events, tpx serve defaults' },
    },
    channels: {
      ws: {
        address: '/ws',
        title: 'Partner event stream',
        description:
          'Authenticate first (only authenticate, ping and pong are accepted before; anything else gets AUTH_REQUIRED). ' +
          'Then subscribe to rooms (event types or ALL). Events are routed per account and room. ' +
          'Resume (SPEC §2.8): every subscribed carries last_seq (the account’s newest seq when the subscription took effect); ' +
          'keep the seq of the last event you processed, or last_seq before any, and send it as after_seq on the next subscribe: ' +
          'the server replays what you missed, then goes live, with no gap and no duplicate. Seqs that can no longer be delivered ' +
          '(pruned) are announced, never skipped silently: in subscribed.gap, or by a gap frame at that point of the stream.',
        messages: Object.fromEntries([...clientIds, ...serverIds].map((id) => [id, ref(`#/components/messages/${id}`)])),
        servers: [ref('#/servers/production'), ref('#/servers/local')],
        bindings: { ws: { method: 'GET', bindingVersion: '0.1.0' } },
        'x-close-codes': closeCodes,
        'x-error-codes': WS_ERROR_CODES,
      },
      sse: {
        address: '/v1/events/stream',
        title: 'Partner event stream over Server-Sent Events (SPEC §2.10)',
        description:
          'The same stream for clients that cannot hold a WebSocket: GET with the key in X-API-Key (or ?api_key= for EventSource, ' +
          'which cannot send headers), ?rooms=A,B (default ALL), and Last-Event-ID (or ?after_seq=N; Last-Event-ID wins) to resume ' +
          'exactly as after_seq on the WebSocket. 200 text/event-stream; every message is `id: <seq>`, `event: <msg_type>`, ' +
          '`data: <the WebSocket frame JSON, byte for byte>`. The first message is always subscribed (id: the position the stream ' +
          'starts after: last_seq, or the resume point); a pruned range is sent as a gap message with id: to_seq (also right ' +
          'after a subscribed whose payload carries gap); error messages carry no id. Comments: `: ping` every ping interval (nothing to answer), and `: close <code> <reason>` before ' +
          'the server ends a stream, with the WebSocket close code (1000 operator, 1001 draining, 4001 key revoked after an error ' +
          'message, 4009 slow consumer after an error message SLOW_CONSUMER). Refusals are HTTP answers with { error, code } before ' +
          'any stream: see x-refusals.',
        servers: [ref('#/servers/productionHttps'), ref('#/servers/localHttp')],
        messages: Object.fromEntries(
          ['server_subscribed', 'server_gap', 'server_error', ...EVENT_TYPES.map((t) => `event_${t}`)].map((id) => [id, ref(`#/components/messages/${id}`)]),
        ),
        'x-sse-framing': { id: 'seq (subscribed: stream position; gap: to_seq; error: none)', event: 'msg_type', data: 'the frame JSON, one line' },
        'x-error-codes': SSE_ERROR_CODES,
        'x-refusals': SSE_REFUSALS,
      },
    },
    operations: {
      receiveClientMessages: {
        action: 'receive',
        title: 'Client → server',
        channel: ref('#/channels/ws'),
        messages: clientIds.map((id) => ref(`#/channels/ws/messages/${id}`)),
      },
      sendControlFrames: {
        action: 'send',
        title: 'Server → client control frames',
        channel: ref('#/channels/ws'),
        messages: control.map((c) => ref(`#/channels/ws/messages/${c[0]}`)),
      },
      sendEvents: {
        action: 'send',
        title: 'Server → client event frames',
        channel: ref('#/channels/ws'),
        messages: EVENT_TYPES.map((t) => ref(`#/channels/ws/messages/event_${t}`)),
      },
      sendEventStream: {
        action: 'send',
        title: 'Server → client: the SSE stream (subscribed first, then events, gaps and errors)',
        channel: ref('#/channels/sse'),
        messages: ['server_subscribed', 'server_gap', 'server_error', ...EVENT_TYPES.map((t) => `event_${t}`)].map((id) => ref(`#/channels/sse/messages/${id}`)),
        bindings: {
          http: {
            method: 'GET',
            query: {
              type: 'object',
              properties: {
                rooms: { type: 'string', description: 'Comma-separated room names (event types or ALL); default ALL' },
                after_seq: { type: 'integer', minimum: 0, description: 'Resume after this seq (Last-Event-ID wins when both are sent)' },
                api_key: { type: 'string', description: 'The API key, where the X-API-Key header cannot be sent (EventSource); never logged' },
              },
            },
            bindingVersion: '0.3.0',
          },
        },
        'x-request-headers': {
          'X-API-Key': 'tp_live_… (or the api_key query parameter)',
          'Last-Event-ID': 'the last seq processed: resume exactly as after_seq (SPEC §2.8)',
        },
      },
    },
    components: { schemas, messages },
  };
}

async function main(): Promise<void> {
  const schemas = protocolJsonSchemas();
  await mkdir(schemaDir, { recursive: true });
  // Remove stale generated files so a renamed schema does not linger.
  for (const file of await readdir(schemaDir)) {
    if (file.endsWith('.json') && !(file.slice(0, -5) in schemas)) await rm(path.join(schemaDir, file));
  }
  for (const [name, schema] of Object.entries(schemas)) {
    await writeFile(path.join(schemaDir, `${name}.json`), `${JSON.stringify(schema, null, 2)}\n`);
  }
  const header = '# Generated by scripts/export-schemas.ts from packages/protocol: do not edit by hand.\n';
  await writeFile(path.join(docsDir, 'asyncapi.yaml'), header + toYaml(asyncApi()));
  process.stdout.write(`wrote ${Object.keys(schemas).length} schemas and asyncapi.yaml to ${path.relative(root, docsDir) || '.'}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
