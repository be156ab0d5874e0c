import { describe, expect, it } from 'vitest';
import { callEdge } from './support/accounts.ts';

describe('playground', () => {
  it('serves the page at / with a strict CSP and its script with the SDK bundled in', async () => {
    const page = await callEdge('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/playground/app.js"></script>');
    expect(html).toContain('id="progress"');

    const script = await callEdge('/playground/app.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const code = await script.text();
    // The SDK's client and its stream handling are in the bundle (no bare import left for the browser).
    expect(code).toContain('/v1/preprocess');
    expect(code).toContain('text/event-stream');
    expect(code).not.toMatch(/from\s*["']@contour\/sdk["']/);
  });

  it('links a favicon that is served (also at /favicon.ico, which browsers ask for unprompted)', async () => {
    const html = await (await callEdge('/')).text();
    expect(html).toContain('<link rel="icon" href="/favicon.svg" type="image/svg+xml" />');
    for (const path of ['/favicon.svg', '/favicon.ico']) {
      const icon = await callEdge(path);
      expect(icon.status).toBe(200);
      expect(icon.headers.get('content-type')).toBe('image/svg+xml');
      expect(await icon.text()).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    }
  });
});
