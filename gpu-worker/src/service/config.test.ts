import { describe, expect, it } from 'vitest';
import { DEV_SIGNING_SECRET, loadServiceConfig } from './config.ts';

describe('loadServiceConfig', () => {
  it('defaults to port 8790 and the development secret outside production', () => {
    const config = loadServiceConfig({});
    expect(config.port).toBe(8790);
    expect(config.signingSecrets).toEqual([DEV_SIGNING_SECRET]);
    expect(config.modelConfigPath).toBeUndefined();
  });

  it('requires a real secret in production', () => {
    expect(() => loadServiceConfig({ NODE_ENV: 'production' })).toThrow(/WORKER_SIGNING_SECRET/);
    expect(() =>
      loadServiceConfig({ NODE_ENV: 'production', WORKER_SIGNING_SECRET: DEV_SIGNING_SECRET }),
    ).toThrow(/development signing secret/);
    expect(
      loadServiceConfig({ NODE_ENV: 'production', WORKER_SIGNING_SECRET: 'a, b' }).signingSecrets,
    ).toEqual(['a', 'b']);
  });

  it('refuses malformed numbers and unknown built-in heads', () => {
    expect(() => loadServiceConfig({ CONTOUR_QUEUE_SIZE: 'ten' })).toThrow(/CONTOUR_QUEUE_SIZE/);
    expect(() => loadServiceConfig({ CONTOUR_MAX_BATCH: '0' })).toThrow(/CONTOUR_MAX_BATCH/);
    expect(() => loadServiceConfig({ CONTOUR_BUILTIN_HEADS: 'canny,nope' })).toThrow(/"nope"/);
    expect(loadServiceConfig({ CONTOUR_BUILTIN_HEADS: 'canny, tile' }).builtinHeads).toEqual([
      'canny',
      'tile',
    ]);
  });

  it('pull mode needs the queue, its token and the edge; push mode is the default', () => {
    expect(loadServiceConfig({}).pull).toBeUndefined();
    expect(() => loadServiceConfig({ CONTOUR_MODE: 'poll' })).toThrow(/CONTOUR_MODE/);
    const pull = {
      CONTOUR_MODE: 'pull',
      CLOUDFLARE_ACCOUNT_ID: 'acc',
      CONTOUR_PULL_QUEUE_ID: 'q',
      CLOUDFLARE_QUEUES_TOKEN: 't',
      CONTOUR_EDGE_URL: 'https://edge.example',
      CONTOUR_MAX_BATCH: '3',
    };
    expect(() => loadServiceConfig({ ...pull, CLOUDFLARE_QUEUES_TOKEN: '' })).toThrow(
      /CLOUDFLARE_QUEUES_TOKEN/,
    );
    expect(() => loadServiceConfig({ ...pull, CONTOUR_PULL_VISIBILITY_MS: String(13 * 3600_000) })).toThrow(
      /12 hours/,
    );
    expect(loadServiceConfig(pull).pull).toMatchObject({
      apiBaseUrl: 'https://api.cloudflare.com/client/v4',
      maxInFlight: 3,
      visibilityTimeoutMs: 720_000,
    });
  });
});
