import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    pool: 'forks',
    globalSetup: ['test/support/global-build.ts', 'test/interop/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
