import type { Config } from '../config/index.js';
import { MemoryBus } from './memory/index.js';
import type { Bus } from './types.js';

export type { Bus, ControlMessage } from './types.js';

/** In-process bus unless TPX_REDIS_URL is set (Redis fan-out is a separate implementation). */
export async function createBus(config: Config): Promise<Bus> {
  if (config.redisUrl) {
    throw new Error('TPX_REDIS_URL is set but the Redis bus is not available in this build yet; unset it to run a single node');
  }
  return new MemoryBus();
}
