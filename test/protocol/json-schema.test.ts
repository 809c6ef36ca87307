import { readFileSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CloseCode, EVENT_TYPES, requiredFields } from '@tpx-realtime/protocol';
import { CLIENT_MESSAGE_SCHEMA_NAMES, protocolJsonSchemas, SERVER_FRAME_SCHEMA_NAMES } from '@tpx-realtime/protocol/json-schema';

describe('protocolJsonSchemas', () => {
  const schemas = protocolJsonSchemas();

  it('contains all 11 event schemas, every client message, every server control frame and the webhook body', () => {
    for (const type of EVENT_TYPES) expect(schemas[type], type).toBeDefined();
    for (const name of CLIENT_MESSAGE_SCHEMA_NAMES) expect(schemas[name], name).toBeDefined();
    for (const name of SERVER_FRAME_SCHEMA_NAMES) expect(schemas[name], name).toBeDefined();
    expect(schemas.WebhookBody).toBeDefined();
    expect(Object.keys(schemas)).toHaveLength(EVENT_TYPES.length + CLIENT_MESSAGE_SCHEMA_NAMES.length + SERVER_FRAME_SCHEMA_NAMES.length + 1);
  });

  it('subscribed requires last_seq; the gap frame and the webhook body’s seq are described (SPEC §2.8, §4)', () => {
    const sub = schemas.SubscribedFrame as { properties: { payload: { required: string[]; properties: Record<string, unknown> } } };
    expect([...sub.properties.payload.required].sort()).toEqual(['last_seq', 'rooms']);
    expect(Object.keys(sub.properties.payload.properties).sort()).toEqual(['gap', 'last_seq', 'resumed_from', 'rooms']);
    const gap = schemas.GapFrame as { properties: { msg_type: { const: string }; payload: { required: string[] } } };
    expect(gap.properties.msg_type.const).toBe('gap');
    expect([...gap.properties.payload.required].sort()).toEqual(['from_seq', 'to_seq']);
    const body = schemas.WebhookBody as { required: string[] };
    expect([...body.required].sort()).toEqual(['destination_id', 'msg_id', 'msg_type', 'payload', 'sent_at', 'seq', 'source_id']);
  });

  it('event schemas list the required fields and allow extra fields', () => {
    for (const type of EVENT_TYPES) {
      const s = schemas[type] as { type: string; required: string[]; additionalProperties: unknown; $schema: string };
      expect(s.type).toBe('object');
      expect([...s.required].sort()).toEqual(requiredFields(type).sort());
      expect(s.additionalProperties).not.toBe(false);
      expect(s.$schema).toContain('2020-12');
    }
  });

  it('enums are exported', () => {
    const s = schemas.PAYMENT_CHARGED as { properties: Record<string, { enum?: string[] }> };
    expect(s.properties.payment_rail!.enum).toEqual(['CARD', 'ACH', 'WIRE', 'TRADEPOST_BALANCE', 'CRYPTO']);
  });

  it('is JSON-serialisable', () => {
    expect(() => JSON.stringify(schemas)).not.toThrow();
  });

  it('the committed docs/schemas are up to date (run `npm run schema`)', () => {
    for (const [name, schema] of Object.entries(schemas)) {
      const file = new URL(`../../docs/schemas/${name}.json`, import.meta.url);
      expect(existsSync(file), name).toBe(true);
      expect(JSON.parse(readFileSync(file, 'utf8')), name).toEqual(schema);
    }
  });

  it('docs/asyncapi.yaml is an AsyncAPI 3.0 document of /ws naming every message, error and close code', () => {
    const doc = readFileSync(new URL('../../docs/asyncapi.yaml', import.meta.url), 'utf8');
    expect(doc).toMatch(/^asyncapi: "3\.0\.0"$/m);
    expect(doc).toContain('address: "/ws"');
    expect(doc).toContain('address: "/v1/events/stream"'); // SSE (SPEC §2.10)
    expect(doc).toContain('SLOW_CONSUMER');
    for (const type of EVENT_TYPES) expect(doc).toContain(`./schemas/${type}.json`);
    for (const name of CLIENT_MESSAGE_SCHEMA_NAMES.filter((n) => n !== 'ClientMessage')) expect(doc).toContain(`./schemas/${name}.json`);
    for (const name of SERVER_FRAME_SCHEMA_NAMES) expect(doc).toContain(`./schemas/${name}.json`);
    expect(doc).toContain('name: "gap"');
    expect(doc).toContain('last_seq');
    for (const code of Object.values(CloseCode)) expect(doc).toContain(`code: ${code}`);
    for (const code of ['AUTH_INVALID_API_KEY', 'AUTH_REQUIRED', 'INVALID_ROOM', 'NO_VALID_ROOMS', 'INVALID_MESSAGE', 'INVALID_JSON']) {
      expect(doc).toContain(`"${code}"`);
    }
  });
});
