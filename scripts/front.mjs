// The local stack's front door: a plain Node proxy before wrangler's dev server. Cloudflare's edge answers a
// request whose body ends short of its Content-Length (the client half-closes) itself; wrangler's dev proxy
// instead turns the broken body into a plain-text 500 with a stack trace. This answers that case with the
// API's error envelope and passes everything else through untouched (streaming both ways, SSE included).
import { randomUUID } from 'node:crypto';
import http from 'node:http';

/** The API's error envelope as a raw response (the edge is not involved, so the request id is made here). */
function envelope(res, status, code, message) {
  if (res.headersSent || res.destroyed) return res.destroy();
  const requestId = randomUUID();
  const body = JSON.stringify({ error: { code, message, details: [], request_id: requestId } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
    connection: 'close',
  });
  res.end(body);
}

/**
 * Listens on `port` and forwards to the dev server on `targetPort` (same host, `Host` kept so the edge builds
 * its public URLs on `port`). Resolves with the server once listening.
 */
export function startFront(port, targetPort, hostname = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      { host: hostname, port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => envelope(res, 502, 'backend_error', 'The local edge did not answer'));
    req.on('aborted', () => {
      upstream.destroy();
      envelope(res, 400, 'invalid_request', 'The request body ended before its Content-Length');
    });
    req.on('end', () => {
      if (!req.complete) {
        upstream.destroy();
        envelope(res, 400, 'invalid_request', 'The request body ended before its Content-Length');
      }
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  // A client may half-close after sending its request (curl --no-keepalive, raw sockets): answer it anyway,
  // as the dev server does, instead of Node's default of dropping the connection.
  server.httpAllowHalfOpen = true;
  server.on('clientError', (_error, socket) => {
    if (!socket.writable) return socket.destroy();
    const body = JSON.stringify({
      error: {
        code: 'invalid_request',
        message: 'Malformed HTTP request',
        details: [],
        request_id: randomUUID(),
      },
    });
    socket.end(
      `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, hostname, () => resolve(server));
  });
}
