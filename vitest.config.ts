import { defineConfig } from 'vitest/config';

// Integration tests start real servers, so files run in parallel forks but each file's
// tests run sequentially; timeouts are generous because these shared 2-core machines are noisy.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/reporters/summary.ts'],
  },
});
