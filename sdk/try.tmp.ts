import { readFileSync } from 'node:fs';
import { Contour } from './src/index.ts';
const c = new Contour({ apiKey: 'sk_dev_fc464a0536f9b246b25774bc2c781c83684fbeb0dc8a8e6b', baseUrl: 'http://127.0.0.1:8911' });
const png = readFileSync('/work/shared/fixtures/canny/toy.in.png');
const t = Date.now();
const g = await c.generations.run({ prompt: 'a toy', controls: [{ type: 'canny', image: png }], steps: 4, image_resolution: 256 }, { onProgress: (p) => console.log(p.step, p.total, Date.now() - t) });
console.log(g.status, g.width, g.height, g.outputs, Date.now() - t);
console.log(await c.billing.balance());
