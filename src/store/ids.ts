/**
 * Time-ordered UUIDs (RFC 9562 version 7) for rows inserted at high rate (deliveries, attempts).
 * Their first 48 bits are the millisecond clock, so new primary-key entries land at the right
 * edge of the B-tree instead of at random pages (as v4 ids do): fewer page splits and cache
 * misses on every insert. They stay valid UUIDs for the API.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 16 * 1024;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
let lastMs = 0;
let counter = 0;

export function uuidv7(now: number = Date.now()): string {
  if (poolOffset + 10 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  // Monotonic within a millisecond: a 12-bit counter in rand_a (RFC 9562 §6.2, method 1).
  let ms = Math.max(now, lastMs);
  if (ms === lastMs) {
    counter++;
    if (counter > 0xfff) {
      ms++;
      counter = 0;
    }
  } else {
    counter = pool[poolOffset] & 0x7f; // random start, leaves headroom
  }
  lastMs = ms;
  const b = pool.subarray(poolOffset, poolOffset + 10);
  poolOffset += 10;
  const hi = Math.floor(ms / 0x10000);
  const lo = ms & 0xffff;
  const t = hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(4, '0');
  return (
    `${t.slice(0, 8)}-${t.slice(8, 12)}-` +
    `7${(counter >> 8).toString(16)}${HEX[counter & 0xff]}-` +
    `${HEX[(b[0] & 0x3f) | 0x80]}${HEX[b[1]]}-` +
    `${HEX[b[2]]}${HEX[b[3]]}${HEX[b[4]]}${HEX[b[5]]}${HEX[b[6]]}${HEX[b[7]]}`
  );
}
