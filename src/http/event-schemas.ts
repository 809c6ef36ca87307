/**
 * The 11 event payloads (EVENTS.md) as components of the OpenAPI document: the protocol
 * package's own zod schemas (the ones the publish API validates with), referenced by name.
 */
import { EVENT_PAYLOAD_SCHEMAS, EVENT_TYPES, type EventType } from '@tpx-realtime/protocol';
import { component } from './schema.js';

export const PAYLOADS = Object.fromEntries(
  EVENT_TYPES.map((type) => [
    type,
    component(type, EVENT_PAYLOAD_SCHEMAS[type], `Payload of the ${type} event (EVENTS.md). Fields not listed are allowed and passed through unchanged.`),
  ]),
) as { [T in EventType]: (typeof EVENT_PAYLOAD_SCHEMAS)[T] };
