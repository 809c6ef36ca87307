import type { Config } from '../config/index.js';
import { MemoryBus } from './memory/index.js';
import { createRedisBus } from './redis/index.js';
import type { Bus } from './types.js';

export type { Bus, ControlMessage } from './types.js';

/** In-process bus unless TPX_REDIS_URL is set, then Redis fan-out between nodes (src/bus/redis). */
export async function createBus(config: Config): Promise<Bus> {
  if (config.redisUrl) {
    if (!/^rediss?:\/\//i.test(config.redisUrl)) throw new Error(`TPX_REDIS_URL must be a redis:// or rediss:// URL, got "${config.redisUrl}"`);
    return createRedisBus(config.redisUrl);
  }
  return new MemoryBus();
}
