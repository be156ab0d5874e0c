import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { startFront } from '../scripts/front.mjs';

let upstream: http.Server;
let front: http.Server;
let port: number;
const seen: { method: string; url: string; host: string; body: string }[] = [];

beforeAll(async () => {
  // Stands in for wrangler's dev server: echoes what it got, and streams on /stream.
  upstream = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, host: req.headers.host!, body });
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: 1\n\n');
        setTimeout(() => res.end('data: 2\n\n'), 50);
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json', 'x-echo': 'yes' });
      res.end(JSON.stringify({ got: body.length }));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  front = await startFront(0, (upstream.address() as AddressInfo).port);
  port = (front.address() as AddressInfo).port;
});

afterAll(() => {
  front?.close();
  upstream?.close();
});

/** Writes raw bytes, half-closes, and returns everything the server answered. */
function raw(payload: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.on('data', (chunk) => {
      out += chunk;
    });
    socket.on('close', () => resolve(out));
    socket.end(payload);
  });
}

describe('scripts/front.mjs (the local stack front door)', () => {
  it('passes requests and responses through, Host kept, streams included', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/x?q=1`, { method: 'POST', body: 'hello' });
    expect(response.status).toBe(201);
    expect(response.headers.get('x-echo')).toBe('yes');
    expect(await response.json()).toEqual({ got: 5 });
    expect(seen.at(-1)).toMatchObject({
      method: 'POST',
      url: '/v1/x?q=1',
      host: `127.0.0.1:${port}`,
      body: 'hello',
    });
    const stream = await fetch(`http://127.0.0.1:${port}/stream`);
    expect(await stream.text()).toBe('data: 1\n\ndata: 2\n\n');
  });

  it('answers a body cut short of its Content-Length with the error envelope', async () => {
    const answer = await raw(
      'POST /v1/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"prompt":',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(body.error).toMatchObject({ code: 'invalid_request' });
    expect(body.error.request_id).toBeTruthy();
  });

  it('answers a client that half-closes after a complete request', async () => {
    const answer = await raw('POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
    expect(answer).toMatch(/^HTTP\/1\.1 201 /);
    expect(answer).toContain('{"got":2}');
    expect(await raw('GET /v1/y HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 201 /);
  });

  it('answers malformed HTTP with a 400 envelope', async () => {
    const answer = await raw('GARBAGE\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"invalid_request"');
  });
});
