/**
 * Quality per step of every sampler on the trained built-in model: control F1 and prompt fidelity (the training
 * evaluator, docs/TRAINING.md) on 16 held-out conditions, CFG 3, the canny ControlNet, at 4, 6, 8, 10, 15 and 20
 * steps; and the fewest steps at which each sampler comes within 0.02 of DDIM-20's control F1.
 *
 *   npx tsx gpu-worker/bench/sampler-quality.bench.ts            prints the table
 *   npx tsx gpu-worker/bench/sampler-quality.bench.ts --write    also writes docs/sampler-quality.{png,json}
 *     and docs/sampler-samples.png (first 8 conditions: control maps, then each sampler at 4 steps, then at 8)
 *
 * CONTOUR_TF_BACKEND picks the backend (wasm by default).
 */
import { writeFile } from 'node:fs/promises';
import { encodePng } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { SAMPLER_NAMES, type SamplerName } from '../src/schedulers/sampler.ts';
import { ClipTokenizer } from '../src/text/tokenizer.ts';
import { loadTrainedBuiltinModel } from '../src/training/builtin-model.ts';
import { evaluateFidelity, heldOutConditions } from '../src/training/evaluate.ts';
import { lineChartPng } from '../src/training/plot.ts';
import { PromptEmbeddings } from '../src/training/text-encoder.ts';

const STEPS = [4, 6, 8, 10, 15, 20];
const CONDITIONS = 16;
/** How close to DDIM-20's control F1 counts as reaching it. */
const F1_MARGIN = 0.02;
const COLOURS: Record<SamplerName, readonly [number, number, number]> = {
  ddim: [0, 0, 0],
  unipc: [200, 30, 30],
  dpmpp_2m: [30, 60, 200],
  dpmpp_2m_karras: [30, 150, 40],
  euler_a: [230, 130, 0],
  lcm: [140, 40, 170],
};

const backend = await initBackend({
  force: (process.env['CONTOUR_TF_BACKEND'] || 'wasm') as 'wasm',
  log: () => {},
});
const model = await loadTrainedBuiltinModel();
const net = (await model.loadHead('canny'))!;
const embeddings = new PromptEmbeddings(model.clip, await ClipTokenizer.fromOpenAIVocab());
const conditions = heldOutConditions(CONDITIONS, model.manifest.imageSize);

interface Row {
  scheduler: SamplerName;
  steps: number;
  controlF1: number;
  promptFidelity: number;
  seconds: number;
}
const rows: Row[] = [];
/** Generated images of the contact sheet, by `${scheduler}@${steps}`. */
const SHEET_STEPS = [4, 8];
const SHEET_COLUMNS = 8;
const sheetImages = new Map<string, Uint8Array[]>();
for (const scheduler of SAMPLER_NAMES) {
  for (const steps of STEPS) {
    const started = performance.now();
    const report = await evaluateFidelity({
      models: { unet: model.unet, vaeDecoder: model.vae },
      embeddings,
      net,
      conditions,
      steps,
      scheduler,
    });
    const seconds = (performance.now() - started) / 1000;
    rows.push({
      scheduler,
      steps,
      controlF1: report.controlF1,
      promptFidelity: report.promptFidelity,
      seconds,
    });
    if (SHEET_STEPS.includes(steps))
      sheetImages.set(`${scheduler}@${steps}`, report.images.slice(0, SHEET_COLUMNS));
    console.error(`${scheduler} ${steps}: F1 ${report.controlF1.toFixed(3)} (${seconds.toFixed(1)} s)`);
  }
}

const target = rows.find((r) => r.scheduler === 'ddim' && r.steps === 20)!.controlF1;
const reaches = (scheduler: SamplerName) =>
  rows.find((r) => r.scheduler === scheduler && r.controlF1 >= target - F1_MARGIN)?.steps;
console.log(
  `${model.manifest.name} on ${backend.name}, ${CONDITIONS} held-out conditions, CFG 3, canny ControlNet; control F1 / prompt fidelity`,
);
console.log(
  `| sampler | ${STEPS.map((s) => `${s} steps`).join(' | ')} | reaches DDIM-20 F1 - ${F1_MARGIN} at |`,
);
console.log(`|---|${STEPS.map(() => '---').join('|')}|---|`);
for (const scheduler of SAMPLER_NAMES) {
  const cells = STEPS.map((steps) => {
    const r = rows.find((row) => row.scheduler === scheduler && row.steps === steps)!;
    return `${r.controlF1.toFixed(3)} / ${r.promptFidelity.toFixed(2)}`;
  });
  const at = reaches(scheduler);
  console.log(`| ${scheduler} | ${cells.join(' | ')} | ${at === undefined ? 'not by 20' : `${at} steps`} |`);
}
console.log(`DDIM-20 control F1 ${target.toFixed(3)}`);

if (process.argv.includes('--write')) {
  const series = SAMPLER_NAMES.map((scheduler) => ({
    label: scheduler.replaceAll('_', ' ').replace('dpmpp', 'dpm'),
    colour: COLOURS[scheduler],
    points: rows.filter((r) => r.scheduler === scheduler).map((r) => ({ x: r.steps, y: r.controlF1 })),
  }));
  const png = lineChartPng(series, { title: 'CONTROL F1 VS SAMPLING STEPS' });
  const docs = new URL('../../docs/', import.meta.url);
  await writeFile(new URL('sampler-quality.png', docs), png);
  const size = model.manifest.imageSize;
  const sheetRows = [
    conditions.slice(0, SHEET_COLUMNS).map((c) => c.source.data),
    ...SHEET_STEPS.flatMap((steps) => SAMPLER_NAMES.map((s) => sheetImages.get(`${s}@${steps}`)!)),
  ];
  const width = size * SHEET_COLUMNS;
  const sheet = new Uint8Array(width * size * sheetRows.length * 3).fill(255);
  sheetRows.forEach((images, r) => {
    images.forEach((image, c) => {
      for (let y = 0; y < size; y++) {
        sheet.set(image.subarray(y * size * 3, (y + 1) * size * 3), ((r * size + y) * width + c * size) * 3);
      }
    });
  });
  await writeFile(
    new URL('sampler-samples.png', docs),
    encodePng({ width, height: size * sheetRows.length, channels: 3, data: sheet }),
  );
  await writeFile(
    new URL('sampler-quality.json', docs),
    `${JSON.stringify({ model: model.manifest.name, backend: backend.name, conditions: CONDITIONS, target, rows }, null, 2)}\n`,
  );
}
tf.disposeVariables();
