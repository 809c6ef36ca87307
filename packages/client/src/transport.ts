/**
 * The WebSocket the client uses: the platform's global `WebSocket` when present (browsers,
 * Deno, Bun, Node ≥ 22), otherwise the `ws` package (Node < 22: an optional peer dependency,
 * installed by the application). `ws` is loaded lazily through a variable specifier marked
 * ignored, so no bundler (webpack, Vite, Rollup, esbuild) tries to put it in a browser build.
 */
import { TpxConnectionError } from './errors.js';


/** The subset of the WHATWG WebSocket API the client relies on (`ws` implements it too). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((ev: any) => void) | null;
  /** `ws` only: drop the TCP connection without a closing handshake. */
  terminate?: () => void;
}

export type WebSocketFactory = (url: string) => WebSocketLike | Promise<WebSocketLike>;

export const WS_OPEN = 1;

type WebSocketCtor = new (url: string) => WebSocketLike;

let cachedCtor: WebSocketCtor | undefined;

async function resolveCtor(): Promise<WebSocketCtor> {
  if (cachedCtor) return cachedCtor;
  const globalCtor = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (typeof globalCtor === 'function') {
    cachedCtor = globalCtor;
    return globalCtor;
  }
  try {
    const specifier = 'ws';
    const mod = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as { WebSocket?: WebSocketCtor; default?: WebSocketCtor };
    const ctor = mod.WebSocket ?? mod.default;
    if (typeof ctor !== 'function') throw new Error('the "ws" module exports no WebSocket class');
    cachedCtor = ctor;
    return ctor;
  } catch (err) {
    // Fatal: retrying cannot install a package.
    throw new TpxConnectionError(
      'NO_WEBSOCKET',
      'this runtime has no global WebSocket (Node < 22) and the "ws" package cannot be loaded ' +
        `(${err instanceof Error ? err.message : String(err)}): run \`npm install ws\`, use Node ≥ 22, or pass options.webSocketFactory`,
      { fatal: true, cause: err },
    );
  }
}

export const defaultWebSocketFactory: WebSocketFactory = async (url) => {
  const Ctor = await resolveCtor();
  return new Ctor(url);
};

/** Read a text frame's data as a string (Node `ws` may hand over a Buffer for binary frames). */
export function frameText(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data as ArrayBufferView);
  return undefined;
}
