import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'tests',
    environment: 'node',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'e2e/**/*.test.ts', '*.test.ts'],
    testTimeout: 60_000,
    // The e2e test starts the whole stack; nothing else should compete with it for the CPU.
    fileParallelism: false,
  },
});
