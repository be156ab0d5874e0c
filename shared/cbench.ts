import { readFileSync } from 'node:fs';
import { canny, decodeImage } from './src/preprocess/index.ts';
const img = await decodeImage(new Uint8Array(readFileSync('shared/test/fixtures/canny/house.in.png')));
const t: number[] = [];
for (let i = 0; i < 300; i++) { const s = performance.now(); canny(img, { low: Number(process.env.LOW ?? 100), high: Number(process.env.HIGH ?? 200) }); t.push(performance.now() - s); }
t.sort((a, b) => a - b);
console.log(img.width, img.height, img.channels, 'min', t[0]!.toFixed(2), 'p25', t[75]!.toFixed(2), 'med', t[150]!.toFixed(2));
