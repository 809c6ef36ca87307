/**
 * Where the client commands find the server and the admin token:
 *   URL:   --url, else TPX_URL, else http://127.0.0.1:8080
 *   token: --admin-token, else TPX_ADMIN_TOKEN, else <TPX_DATA_DIR or ./data>/admin-token
 *          (the file the server writes when it generates a token on first start).
 */
import { readFileSync } from 'node:fs';
import { tpx } from './invocation.js';
import path from 'node:path';
import type { Command } from 'commander';
import { ApiClient } from './api.js';
import { CliError } from './errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface GlobalOptions {
  url?: string;
  adminToken?: string;
}

function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}

/**
 * `--url` / `--admin-token` are accepted both before the subcommand (`tpx --url … accounts
 * list`) and on every leaf command (`tpx accounts list --url …`); the leaf wins. On
 * `webhooks add`, `--url` is the endpoint, so the server URL is `--server` there.
 */
export function globalOpts(cmd: Command, opts: { ignoreLocalUrl?: boolean } = {}): GlobalOptions {
  const root = rootOf(cmd).opts() as GlobalOptions;
  const local = cmd.opts() as GlobalOptions & { server?: string };
  return {
    url: local.server ?? (opts.ignoreLocalUrl ? undefined : local.url) ?? root.url,
    adminToken: local.adminToken ?? root.adminToken,
  };
}

/** Add the connection options to every leaf command except those in `skip`. */
export function addConnectionOptions(cmd: Command, skip: ReadonlySet<string>, noAdmin: ReadonlySet<string>): void {
  for (const sub of cmd.commands) {
    if (skip.has(sub.name())) continue;
    if (sub.commands.length > 0) {
      addConnectionOptions(sub, skip, noAdmin);
      continue;
    }
    const has = (flag: string) => sub.options.some((o) => o.long === flag);
    if (has('--url')) sub.option('--server <url>', 'server base URL (env TPX_URL, default http://127.0.0.1:8080)');
    else sub.option('--url <url>', 'server base URL (env TPX_URL, default http://127.0.0.1:8080)');
    if (!has('--admin-token') && !noAdmin.has(sub.name())) sub.option('--admin-token <token>', 'admin token (env TPX_ADMIN_TOKEN, else <TPX_DATA_DIR>/admin-token)');
  }
}

export function resolveUrl(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  const raw = (opts.url || env.TPX_URL || DEFAULT_URL).trim();
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new CliError(`invalid server URL "${raw}" (expected e.g. ${DEFAULT_URL})`);
  }
  // The WebSocket URL partners are given (`ws(s)://host/ws`, with or without a final slash) names
  // the same server: take its base URL, as the SDK takes either.
  if (u.protocol === 'ws:') u.protocol = 'http:';
  else if (u.protocol === 'wss:') u.protocol = 'https:';
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new CliError(`invalid server URL "${raw}": use http:// or https:// (or the ws:// / wss:// URL of /ws)`);
  }
  u.pathname = u.pathname.replace(/\/+$/, '').replace(/\/ws$/, '');
  return u.toString().replace(/\/+$/, '');
}

/** `http://h:p` → `ws://h:p/ws`, `https://…` → `wss://…/ws`. */
export function wsUrlFor(httpUrl: string): string {
  const u = new URL(httpUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = u.pathname.replace(/\/+$/, '') + '/ws';
  return u.toString();
}

/** The one environment variable of a partner API key, in the CLI, the examples and the docs. */
export const API_KEY_ENV = 'TPX_API_KEY';
/** Names used by older docs and examples, still read (with a warning) so old scripts keep working. */
const DEPRECATED_API_KEY_ENVS = ['TPX_TOKEN', 'TPX_KEY'] as const;

/** `--token`, else TPX_API_KEY, else a deprecated alias (with a notice on stderr). */
export function resolveApiKey(token: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (token?.trim()) return token.trim();
  const value = env[API_KEY_ENV]?.trim();
  if (value) return value;
  for (const name of DEPRECATED_API_KEY_ENVS) {
    const old = env[name]?.trim();
    if (old) {
      process.stderr.write(`warning: ${name} is deprecated; set ${API_KEY_ENV} instead\n`);
      return old;
    }
  }
  throw new CliError(`missing API key: pass --token <tp_live_…> or set ${API_KEY_ENV} (create one with \`${tpx()} keys create --account <id>\`)`);
}

export function adminTokenFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.TPX_DATA_DIR || './data', 'admin-token');
}

export function resolveAdminToken(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  if (opts.adminToken) return opts.adminToken.trim();
  if (env.TPX_ADMIN_TOKEN) return env.TPX_ADMIN_TOKEN.trim();
  const file = adminTokenFile(env);
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return token;
  } catch {
    /* fall through */
  }
  throw new CliError(
    `no admin token: pass --admin-token, set TPX_ADMIN_TOKEN, or run from the directory whose data dir holds ${file}`,
  );
}

/** An admin-authenticated API client for a command. */
export function adminClient(cmd: Command, o: { ignoreLocalUrl?: boolean } = {}): ApiClient {
  const opts = globalOpts(cmd, o);
  return new ApiClient(resolveUrl(opts), resolveAdminToken(opts));
}
