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
});
