import type { Config } from '../config/index.js';
import { MemoryBus } from './memory/index.js';
import type { Bus } from './types.js';

export type { Bus, ControlMessage } from './types.js';

/** In-process bus unless TPX_REDIS_URL is set, then Redis fan-out between nodes (src/bus/redis). */
export async function createBus(config: Config): Promise<Bus> {
  if (config.redisUrl) {
    if (!/^rediss?:\/\//i.test(config.redisUrl)) throw new Error(`TPX_REDIS_URL must be a redis:// or rediss:// URL, got "${config.redisUrl}"`);
    // Loaded only when configured: a single node never pays for ioredis (its module graph is
    // ≈ 0.7 MiB of heap and several MiB of RSS at start-up, docs/performance.md round 3).
    const { createRedisBus } = await import('./redis/index.js');
    return createRedisBus(config.redisUrl);
  }
  return new MemoryBus();
}
