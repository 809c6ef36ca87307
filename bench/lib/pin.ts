/**
 * CPU pinning (issue 13's method): the server under test on one core, the load generator, the
 * publisher and this orchestrator on the other, so the server's CPU per message is not diluted
 * by, or charged for, the clients' work. Uses util-linux `taskset -a -p` on the running process:
 * every existing thread is moved, and threads and processes it creates later (libuv's pool,
 * worker threads, nginx workers, PostgreSQL backends) inherit the mask.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface PinPlan {
  /** False when pinning is off (`--no-pin`, one CPU, or no taskset). */
  enabled: boolean;
  /** CPU list for the servers under test (taskset syntax). */
  server: string;
  /** CPU list for the clients (load generator, publisher, orchestrator). */
  clients: string;
  /** Why pinning is off, when it is. */
  reason: string | null;
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function pinPlan(wanted: boolean): PinPlan {
  const cpus = os.cpus().length;
  if (!wanted) return { enabled: false, server: '', clients: '', reason: 'pinning disabled (--no-pin)' };
  if (cpus < 2) return { enabled: false, server: '', clients: '', reason: `only ${cpus} CPU` };
  if (!hasTaskset()) return { enabled: false, server: '', clients: '', reason: 'taskset (util-linux) not found' };
  // Server on CPU 0; everything else on the rest (CPU 1 on the 2-core reference machine).
  return { enabled: true, server: '0', clients: cpus === 2 ? '1' : `1-${cpus - 1}`, reason: null };
}

/** Pin a running process and all its threads; a no-op when the plan is disabled. */
export function pin(pid: number, cpus: string, plan: PinPlan): void {
  if (!plan.enabled || !cpus) return;
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}
