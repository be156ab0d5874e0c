// Bench-only Worker for edge-path.bench.ts: the edge's Canny path (decode + canny + encode + store in R2) on
// the request body, run inside workerd. `/path?n=K` runs it K times and returns each stage's times
// (performance.now advances in local workerd); `/noop` answers at once (the baseline for request overhead) and `/store` only puts
// 24 KB into R2 (what the local R2 simulator costs inside workerd; in production R2 is I/O, not Worker CPU).
import { canny, decodeImage, encodePngAsync } from '@contour/shared/preprocess';

interface Env {
  IMAGES: R2Bucket;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/noop') return new Response('ok');
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (url.pathname === '/store') {
      // Only the R2 put of a stored-size edge map: what local R2 itself costs inside workerd.
      await env.IMAGES.put('bench/store.png', bytes.subarray(0, 24 * 1024));
      return new Response('ok');
    }
    const runs = Number(url.searchParams.get('n') ?? 1);
    const samples: Record<'decode' | 'canny' | 'encode' | 'store', number[]> = {
      decode: [],
      canny: [],
      encode: [],
      store: [],
    };
    for (let i = 0; i < runs; i++) {
      let t = performance.now();
      const image = await decodeImage(bytes);
      samples.decode.push(performance.now() - t);
      t = performance.now();
      const edges = canny(image, { low: 100, high: 200 });
      samples.canny.push(performance.now() - t);
      t = performance.now();
      const png = await encodePngAsync(edges);
      samples.encode.push(performance.now() - t);
      t = performance.now();
      await env.IMAGES.put(`bench/${i % 4}.png`, png, { httpMetadata: { contentType: 'image/png' } });
      samples.store.push(performance.now() - t);
    }
    return Response.json(samples);
  },
};
