import { defineConfig } from 'vitest/config';

// Integration tests start real servers, so files run in parallel forks but each file's
// tests run sequentially; timeouts are generous because these shared 2-core machines are noisy.
// The workspace packages (@tpx-realtime/protocol, @tpx-realtime/client) resolve to their
// TypeScript sources through the `tpx-source` export condition, so tests never need a build.
export default defineConfig({
  resolve: { conditions: ['tpx-source'] },
  ssr: { resolve: { conditions: ['tpx-source'], externalConditions: ['tpx-source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ['--conditions=tpx-source'] } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/reporters/summary.ts'],
  },
});
