/** Starting tpx-realtime for the benchmark, always with its durability mode stated explicitly. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { IS_TS, NodeServer, REPO_ROOT } from './children.js';
import type { Plan } from './plan.js';

export type Durability = 'synced' | 'relaxed';

/**
 * Whether the server under test reads TPX_DURABILITY (issue 10). The benchmark always passes it,
 * so its rows are right once the store work lands; until then both modes run the same server
 * and the report says so rather than presenting two equal columns as a finding.
 */
export function serverReadsDurability(): boolean {
  const dir = IS_TS ? path.join(REPO_ROOT, 'src') : path.join(REPO_ROOT, 'dist', 'src');
  const ext = IS_TS ? '.ts' : '.js';
  for (const f of [path.join(dir, 'config', 'index' + ext), path.join(dir, 'config', 'durability' + ext)]) {
    if (existsSync(f) && readFileSync(f, 'utf8').includes('TPX_DURABILITY')) return true;
  }
  return false;
}

export function startTpx(
  plan: Plan,
  opts: { durability: Durability; name?: string; env?: Record<string, string>; adminToken?: string },
): Promise<NodeServer> {
  return NodeServer.start({
    kind: 'tpx',
    name: opts.name ?? `tpx (${opts.durability})`,
    env: { TPX_DURABILITY: opts.durability, ...opts.env },
    adminToken: opts.adminToken,
    pins: plan.pins,
  });
}
