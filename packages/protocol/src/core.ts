/**
 * The zod-free core of the protocol: event types, rooms, error and close codes, and the `loose`
 * escape hatch of the payload types. The partner SDK imports only this at run time
 * (`@tpx-realtime/protocol/core`), so loading the SDK never loads zod.
 */
export * from './constants.js';
export { loose } from './loose.js';
