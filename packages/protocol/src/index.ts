/**
 * Protocol barrel: wire constants, frame shapes, client-message schemas and parser, event
 * payload schemas and validator, sample payloads. Imported by the gateway, the publish API,
 * the CLI and the partner SDK (browser and Node), so everything re-exported here is pure
 * (zod is the only dependency; no Node-only imports).
 *
 * `./json-schema.js` is deliberately NOT re-exported: only the schema export script and docs
 * tooling need JSON Schema, and keeping it out means browser bundles never carry the
 * JSON Schema converter even without tree-shaking. Import it directly:
 * `import { protocolJsonSchemas } from '@tpx-realtime/protocol/json-schema'`.
 *
 * `@tpx-realtime/protocol/core` is the zod-free part (event types, rooms, error and close codes,
 * `loose`): the partner SDK imports only that at run time, so loading the SDK never loads zod.
 */
export * from './core.js';
export * from './frames.js';
export * from './client-messages.js';
export * from './server-messages.js';
export * from './events.js';
export * from './samples.js';
