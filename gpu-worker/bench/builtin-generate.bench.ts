/**
 * The trained built-in model's generation time: one 64x64 image, 20 DDIM steps, CFG 3 (a batch of 2 per step),
 * the canny ControlNet, through the worker's ControlNetPipeline; median of 5 after a warm-up. The target
 * is about a second on a laptop CPU.
 *
 *   npx tsx gpu-worker/bench/builtin-generate.bench.ts      (CONTOUR_TF_BACKEND picks the backend, wasm by default)
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { ControlNetPipeline } from '../src/pipelines/controlnet-pipeline.ts';
import { ClipTokenizer } from '../src/text/tokenizer.ts';
import { loadTrainedBuiltinModel } from '../src/training/builtin-model.ts';
import { heldOutConditions } from '../src/training/evaluate.ts';
import { PromptEmbeddings } from '../src/training/text-encoder.ts';

const backend = await initBackend({
  force: (process.env['CONTOUR_TF_BACKEND'] || 'wasm') as 'wasm',
  log: () => {},
});
const model = await loadTrainedBuiltinModel();
const head = (await model.loadHead('canny'))!;
const embeddings = new PromptEmbeddings(model.clip, await ClipTokenizer.fromOpenAIVocab());
const pipeline = new ControlNetPipeline({ unet: model.unet, vaeDecoder: model.vae });
const [condition] = heldOutConditions(1, model.manifest.imageSize);
const size = model.manifest.imageSize;
const hint = tf.tensor4d(
  Float32Array.from(condition!.source.data, (v) => v / 255),
  [1, size, size, 3],
);
const context = embeddings.batch([condition!.prompt]);
const uncontext = embeddings.get('');

async function once(seed: number): Promise<number> {
  const started = performance.now();
  await pipeline.generate({
    context,
    uncontext,
    controls: [{ net: head, hint }],
    width: size,
    height: size,
    steps: 20,
    guidanceScale: 3,
    eta: 0,
    seed,
    numImages: 1,
    guessMode: false,
  });
  return performance.now() - started;
}

await once(0);
const times: number[] = [];
for (let i = 1; i <= 5; i++) times.push(await once(i));
times.sort((a, b) => a - b);
console.log(
  `${model.manifest.name}: 64x64, 20 DDIM steps, CFG 3, canny ControlNet on ${backend.name}: median ${times[2]!.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times[4]!.toFixed(0)})`,
);
