import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { FAKE_REPLICATE_TOKEN, FAKE_REPLICATE_WEBHOOK_SECRET } from './test/support/replicate-constants.ts';

// Edge tests run inside workerd with the bindings declared in the root wrangler.toml (real local D1, R2,
// Durable Objects and Queues). The GPU pool points at the fault-injecting fake worker started in
// globalSetup; the jobs queue delivers to the real consumer.
export default defineConfig({
  plugins: [
    cloudflareTest(async ({ inject }) => ({
      wrangler: { configPath: '../wrangler.toml' },
      miniflare: {
        bindings: {
          GPU_WORKERS: `${inject('fakeWorkerUrl' as never)}/ok`,
          PUBLIC_BASE_URL: 'http://edge.test',
          REPLICATE_BASE_URL: `${inject('fakeReplicateUrl' as never)}/v1`,
          REPLICATE_API_TOKEN: FAKE_REPLICATE_TOKEN,
          REPLICATE_WEBHOOK_SECRET: FAKE_REPLICATE_WEBHOOK_SECRET,
          // D1 schema for test/support/apply-migrations.ts; the customer webhook receiver's base URL.
          TEST_MIGRATIONS: await readD1Migrations(new URL('./migrations', import.meta.url).pathname),
          TEST_WEBHOOK_RECEIVER: inject('webhookReceiverUrl' as never),
        },
      },
    })),
  ],
  test: {
    name: 'edge',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: [
      './test/support/global-setup.ts',
      './test/support/replicate-setup.ts',
      './test/support/webhook-setup.ts',
      './test/support/queues-setup.ts',
    ],
    setupFiles: ['./test/support/apply-migrations.ts'],
    testTimeout: 30_000,
  },
});
