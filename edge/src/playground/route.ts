import { type Context, Hono } from 'hono';
import type { AppEnv } from '../env.ts';
import { PLAYGROUND_HTML_BASE64, PLAYGROUND_JS_BASE64 } from './assets.generated.ts';

function decode(base64: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
}

const html = decode(PLAYGROUND_HTML_BASE64);
const script = decode(PLAYGROUND_JS_BASE64);

/** The page may only load its own script and talk to its own origin (the API). */
export const PLAYGROUND_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The playground's icon: a contour line in a rounded square (also answers /favicon.ico, which browsers ask for). */
const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1d1d1f"/>' +
  '<path d="M7 22c3-9 6-12 9-12s4 6 9 2" fill="none" stroke="#7fb2ff" stroke-width="3" stroke-linecap="round"/></svg>';

/**
 * The playground at `/` (a page built on @contour/sdk: draw or upload control images, live preprocess
 * preview, generate with per-step progress) and its script at `/playground/app.js`. Both are public; the
 * page asks for the caller's API key and keeps it in the tab's sessionStorage.
 */
function favicon(c: Context<AppEnv>): Response {
  c.header('content-type', 'image/svg+xml');
  c.header('cache-control', 'public, max-age=86400');
  return c.body(FAVICON_SVG);
}

export const playgroundRoute = new Hono<AppEnv>()
  .get('/', (c) => {
    c.header('content-security-policy', PLAYGROUND_CSP);
    c.header('cache-control', 'no-cache');
    return c.html(html);
  })
  .get('/favicon.svg', favicon)
  .get('/favicon.ico', favicon)
  .get('/playground/app.js', (c) => {
    c.header('content-type', 'text/javascript; charset=utf-8');
    c.header('cache-control', 'no-cache');
    return c.body(script);
  });
