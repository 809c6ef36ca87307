/**
 * End-of-burst flushing shared by every transport: a transport that queued its first frame of
 * this burst registers here, and one microtask hands every registered transport's frames to its
 * socket in one write each. A microtask runs once the current callback and the continuations
 * already queued are done: every publish of one group commit (their continuations are queued
 * together) still leaves in one write per socket, without waiting for another loop phase
 * (setImmediate cost p50 +0.6 ms at 100 events/s, docs/performance.md).
 */
export interface Flushable {
  flush(): void;
}

let dirty: Flushable[] = [];
let scheduled = false;

export function scheduleFlush(target: Flushable): void {
  dirty.push(target);
  if (!scheduled) {
    scheduled = true;
    queueMicrotask(flushAll);
  }
}

function flushAll(): void {
  scheduled = false;
  const batch = dirty;
  dirty = [];
  for (const target of batch) target.flush();
}
