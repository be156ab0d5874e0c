import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script without type declarations
import { buildPlaygroundAssets, GENERATED_PATH } from '../edge/src/playground/build.mjs';

describe('edge/src/playground/assets.generated.ts', () => {
  it('is what build.mjs makes from page.html, app.js and the SDK now (run `node edge/src/playground/build.mjs`)', async () => {
    const built: string = await buildPlaygroundAssets();
    expect(await readFile(GENERATED_PATH, 'utf8')).toBe(built);
    expect(built).toContain('PLAYGROUND_JS_BASE64');
  });
});
