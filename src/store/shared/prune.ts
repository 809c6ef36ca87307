/**
 * Retention pruning in chunks, the same walk for both stores. Once retention is reached, each
 * run deletes everything that expired since the previous one (millions of rows under load);
 * one transaction for all of it stalled SQLite's event loop for seconds and held PostgreSQL
 * row locks as long. Here each chunk is its own transaction with the event loop running between
 * chunks. Per account the oldest rows go first and each chunk raises pruned_through to exactly
 * what it deleted, so "seq <= pruned_through is gone" holds at every commit.
 */
export const PRUNE_CHUNK_ROWS = 5_000;

export interface PruneSteps {
  /** Accounts with stream rows older than the cutoff, with the highest such seq of each. */
  expired(cutoffMs: number): Promise<Array<{ account_id: string; max_seq: number }>>;
  /** One transaction: delete the account's oldest ≤ `chunk` rows with seq ≤ through; rows deleted. */
  pruneAccount(accountId: string, through: number, chunk: number): Promise<number>;
  /** One transaction: delete ≤ `chunk` succeeded deliveries created before the cutoff. */
  pruneSucceededDeliveries(cutoffMs: number, chunk: number): Promise<number>;
  /** One transaction: delete ≤ `chunk` events older than the cutoff that no unfinished delivery needs. */
  pruneEvents(cutoffMs: number, chunk: number): Promise<number>;
  /** False once the store is closing: stop (the next start prunes the rest). */
  alive(): boolean;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Returns how many account-event rows were removed. */
export async function pruneInChunks(steps: PruneSteps, cutoffMs: number, chunk: number): Promise<number> {
  let removed = 0;
  for (const { account_id, max_seq } of await steps.expired(cutoffMs)) {
    for (;;) {
      if (!steps.alive()) return removed;
      const n = await steps.pruneAccount(account_id, max_seq, chunk);
      removed += n;
      if (n < chunk) break;
      await yieldToLoop();
    }
  }
  // Succeeded deliveries leave with their events; pending and failed ones stay (and keep their event).
  for (const step of [steps.pruneSucceededDeliveries, steps.pruneEvents]) {
    for (;;) {
      if (!steps.alive()) return removed;
      if ((await step.call(steps, cutoffMs, chunk)) < chunk) break;
      await yieldToLoop();
    }
  }
  return removed;
}
