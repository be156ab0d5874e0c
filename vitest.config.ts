import { defineConfig } from 'vitest/config';

// One runner for the whole tree: each package is a project with its own environment
// (edge tests run inside workerd, the rest in Node).
export default defineConfig({
  test: {
    projects: ['shared', 'gpu-worker', 'edge', 'sdk', 'tests'],
  },
});
