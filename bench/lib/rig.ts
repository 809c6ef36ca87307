/** A server under test plus its own load generator and publisher (on the clients' CPUs). */
import { Loadgen, Publisher, createAccounts, type BenchAccount, type BenchServer } from './children.js';
import { BENCH_PAYLOAD } from './payload.js';
import type { Plan } from './plan.js';
import type { Rig } from '../scenarios.js';

export const LOCAL_ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];

/**
 * Run `body` with a rig around an already started server; the clients are stopped afterwards,
 * the server is the caller's. `accounts`: how many to create (tpx: through the admin API), or
 * the accounts to use (the nodes of a cluster share them).
 */
export async function withClients<T>(
  server: BenchServer,
  plan: Plan,
  accounts: number | BenchAccount[],
  log: (m: string) => void,
  body: (rig: Rig) => Promise<T>,
): Promise<T> {
  let loadgen: Loadgen | null = null;
  let publisher: Publisher | null = null;
  try {
    const acc = typeof accounts === 'number' ? await createAccounts(server, accounts) : accounts;
    const placement = { pins: plan.pins };
    loadgen = await Loadgen.start(plan.workers, placement);
    publisher = await Publisher.start(placement);
    return await body({ server, loadgen, publisher, accounts: acc, payload: BENCH_PAYLOAD, localAddresses: LOCAL_ADDRESSES, log });
  } catch (err) {
    const tail = server.output().slice(-3000);
    throw new Error(`${(err as Error).stack ?? err}\n--- ${server.name} output (tail) ---\n${tail}`);
  } finally {
    await Promise.allSettled([loadgen?.stop(), publisher?.stop()]);
  }
}
