import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// Edge tests run inside workerd with the bindings declared in the root wrangler.toml (real local D1, R2,
// Durable Objects and Queues). The GPU pool points at the fault-injecting fake worker started in
// globalSetup; the jobs queue delivers to the real consumer.
export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: '../wrangler.toml' },
      miniflare: {
        bindings: {
          GPU_WORKERS: `${inject('fakeWorkerUrl' as never)}/ok`,
          PUBLIC_BASE_URL: 'http://edge.test',
        },
      },
    })),
  ],
  test: {
    name: 'edge',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./test/support/global-setup.ts'],
    testTimeout: 30_000,
  },
});
