import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.ts';
import { type ControlNetHead, ControlNetModel } from '../models/controlnet.ts';
import { UNetModel } from '../models/unet.ts';
import { VaeDecoder } from '../models/vae.ts';
import { ClipTokenizer } from '../text/tokenizer.ts';
import { loadControlNet, loadUNet, loadVaeDecoder } from '../weights/checkpoint.ts';
import { BUILTIN_DESCRIPTION, type TrainedBuiltinManifest } from './builtin-model.ts';
import { saveControlNet, saveUNet, saveVaeDecoder } from './checkpoint.ts';
import { initControlNetFromUNet, type JoinInit } from './controlnet-init.ts';
import { ControlNetLiteModel } from './controlnet-lite.ts';
import { readPromptJsonDataset, writeCircleDataset } from './dataset.ts';
import { initParams } from './init.ts';
import { createFrozenClip, FROZEN_CLIP_SEED, PromptEmbeddings } from './text-encoder.ts';
import {
  TINY_CLIP_CONFIG,
  TINY_CONTROLNET_CONFIG,
  TINY_IMAGE_SIZE,
  TINY_UNET_CONFIG,
  TINY_VAE_CONFIG,
} from './tiny-config.ts';
import { type LoopOptions, TensorDataset, trainBaseUNet, trainControlNet, trainDecoder } from './train.ts';
import { registerTrainingKernels } from './wasm-kernels.ts';

const USAGE = `contour-train <command> [options]
  dataset           --out DIR [--count 4000] [--size 64] [--seed 1] [--start 0]
  train-decoder     --data DIR --out DIR [--resume DIR] [--steps N --batch 8 --lr 1e-3 --max-minutes M]
  train-base        --data DIR --out DIR [--resume DIR] [--steps N --batch 32 --lr 5e-4 --prompt-drop 0.1 --x0-weight-cap 0
                    --max-minutes M]
  train-controlnet  --data DIR --base DIR --out DIR [--resume RUN_DIR] [--steps N --batch 16 --accumulate 1 --lr 1e-4
                    --sd-locked true|false --only-mid-control --prompt-drop 0 --join-init zero|gaussian
                    --arch full|lite (lite: the paper's ControlNet-lite ablation, not saved)
                    --eval-every N --eval-count 16 --save-every N --max-minutes M]
  evaluate          --base DIR [--controlnet DIR] [--count 64] [--steps 20] [--out FILE]
  evaluate-checkpoints --base DIR --out RUN_DIR [--eval-count 16] [--log FILE]
  average-checkpoints --run RUN_DIR --from N --to M [--every 100] --out DIR   (mean of checkpoints/step-*)
  export-builtin    --base DIR --controlnet DIR --out DIR   (F16 copy + model.json for the worker)
  plot              --out chart.png --series label=log.jsonl [--series ...]
Common: --seed S --first-step N (with --resume) --log FILE (JSON lines) --backend wasm|cpu|tensorflow`;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string' },
    data: { type: 'string' },
    base: { type: 'string' },
    controlnet: { type: 'string' },
    count: { type: 'string' },
    size: { type: 'string' },
    seed: { type: 'string' },
    start: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string' },
    accumulate: { type: 'string' },
    lr: { type: 'string' },
    'prompt-drop': { type: 'string' },
    'sd-locked': { type: 'string' },
    'only-mid-control': { type: 'boolean' },
    'join-init': { type: 'string' },
    'eval-every': { type: 'string' },
    'eval-count': { type: 'string' },
    'save-every': { type: 'string' },
    'max-minutes': { type: 'string' },
    log: { type: 'string' },
    backend: { type: 'string' },
    resume: { type: 'string' },
    arch: { type: 'string' },
    run: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    every: { type: 'string' },
    series: { type: 'string', multiple: true },
    'x0-weight-cap': { type: 'string' },
    'first-step': { type: 'string' },
    help: { type: 'boolean' },
  },
});

function num(name: keyof typeof values, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got ${String(raw)}`);
  return value;
}

function required(name: 'out' | 'data' | 'base' | 'run'): string {
  const value = values[name];
  if (!value) throw new Error(`--${name} is required\n${USAGE}`);
  return resolve(value);
}

/** A one-line progress bar on a TTY, a line every 10 steps otherwise (nohup logs). */
function progress(total: number, label: string): (step: number, loss: number) => void {
  const started = performance.now();
  let average = 0;
  // A resumed run starts past step 1: rates and the loss average count from the first step this process ran.
  let firstStep: number | undefined;
  return (step, loss) => {
    firstStep ??= step;
    average = step === firstStep ? loss : 0.95 * average + 0.05 * loss;
    const stepsRun = step - firstStep + 1;
    const seconds = (performance.now() - started) / 1000;
    const width = 30;
    const filled = Math.round((width * step) / total);
    const line = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${step}/${total} loss ${average.toFixed(4)} ${(seconds / stepsRun).toFixed(2)}s/step`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}`);
    else if (step % 10 === 0 || step === total) console.log(line);
  };
}

async function setup(): Promise<void> {
  const backend = values.backend as 'wasm' | 'cpu' | 'tensorflow' | undefined;
  await initBackend({ force: backend ?? 'wasm', log: () => {} });
  registerTrainingKernels();
}

function loopOptions(defaults: { steps: number; batch: number }, label: string): LoopOptions {
  const steps = num('steps', defaults.steps);
  return {
    steps,
    batchSize: num('batch', defaults.batch),
    accumulate: num('accumulate', 1),
    maxMinutes: values['max-minutes'] === undefined ? undefined : num('max-minutes', 60),
    seed: num('seed', 1),
    firstStep: num('first-step', 0),
    logFile: values.log ? resolve(values.log) : undefined,
    onProgress: progress(steps, label),
  };
}

async function embeddings(): Promise<PromptEmbeddings> {
  return new PromptEmbeddings(createFrozenClip(TINY_CLIP_CONFIG), await ClipTokenizer.fromOpenAIVocab());
}

async function main(): Promise<void> {
  const command = positionals[0];
  if (!command || values.help) {
    console.log(USAGE);
    return;
  }
  if (command === 'dataset') {
    const out = required('out');
    await writeCircleDataset(out, {
      seed: num('seed', 1),
      count: num('count', 4000),
      size: num('size', 64),
      start: num('start', 0),
    });
    console.log(`wrote ${num('count', 4000)} samples to ${out}`);
    return;
  }
  if (command === 'average-checkpoints') {
    // Checkpoint averaging (Polyak): the mean of a run's saved heads over its last steps, which evens out the
    // step-to-step wobble of a small-batch run (docs/TRAINING.md: it scored best on the validation conditions).
    await setup();
    const run = required('run');
    const out = required('out');
    const from = num('from', 0);
    const to = num('to', 0);
    const every = num('every', 100);
    if (!(every > 0) || to < from) throw new Error('need --from <= --to and --every > 0');
    const steps: number[] = [];
    for (let step = from; step <= to; step += every) steps.push(step);
    const nets = await Promise.all(
      steps.map((step) => loadControlNet(join(resolve(run), 'checkpoints', `step-${step}`))),
    );
    const [first] = nets;
    for (const [name] of first!.params.specs) {
      const mean = tf.tidy(() => tf.addN(nets.map((net) => net.params.get(name))).div(nets.length));
      first!.params.setTensor(name, mean);
    }
    await saveControlNet(out, first!.params, first!.config);
    for (const net of nets) net.dispose();
    console.log(`averaged steps ${steps.join(', ')} of ${run} into ${out}`);
    return;
  }
  if (command === 'export-builtin') {
    // Copies a trained base + canny head into the asset layout loadTrainedBuiltinModel reads, as F16.
    await setup();
    const base = required('base');
    const out = required('out');
    const unet = await loadUNet(join(base, 'unet'));
    const vae = await loadVaeDecoder(join(base, 'vae'));
    const net = await loadControlNet(resolve(String(values.controlnet ?? join(base, 'controlnet-canny'))));
    await saveUNet(join(out, 'unet'), unet.params, unet.config, 'F16');
    await saveVaeDecoder(join(out, 'vae'), vae.params, vae.config, 'F16');
    await saveControlNet(join(out, 'controlnet-canny'), net.params, net.config, 'F16');
    const manifest: TrainedBuiltinManifest = {
      name: 'contour-circles-tiny',
      imageSize: TINY_IMAGE_SIZE,
      textEncoder: { config: TINY_CLIP_CONFIG, seed: FROZEN_CLIP_SEED },
      heads: { canny: 'controlnet-canny' },
      description: BUILTIN_DESCRIPTION,
      defaults: { prompt: 'red circle with blue background', steps: 20, guidanceScale: 3 },
    };
    await writeFile(join(out, 'model.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    console.log(`exported to ${out}`);
    return;
  }
  if (command === 'evaluate-checkpoints') {
    const { runEvaluateCheckpointsCommand } = await import('./evaluate-cli.ts');
    await setup();
    await runEvaluateCheckpointsCommand(values);
    return;
  }
  if (command === 'plot') {
    // --log label=path.jsonl (repeatable) --out chart.png
    const { plotFidelity } = await import('./evaluate-cli.ts');
    const logs = (values.series ?? []).map((pair) => {
      const [label, path] = pair.split('=');
      if (!label || !path) throw new Error('--series must be label=path.jsonl');
      return { label, path: resolve(path) };
    });
    await plotFidelity(logs, required('out'));
    return;
  }
  if (command === 'evaluate') {
    const { runEvaluateCommand } = await import('./evaluate-cli.ts');
    await setup();
    await runEvaluateCommand(values);
    return;
  }
  await setup();
  const data = new TensorDataset(await readPromptJsonDataset(required('data')));
  const out = required('out');
  await mkdir(out, { recursive: true });
  if (command === 'train-decoder') {
    let vae: VaeDecoder;
    if (values.resume) vae = await loadVaeDecoder(join(resolve(values.resume), 'vae'));
    else {
      vae = new VaeDecoder(TINY_VAE_CONFIG);
      initParams(vae.params, num('seed', 1));
    }
    const options = loopOptions({ steps: 2000, batch: 8 }, 'decoder');
    const result = await trainDecoder(vae, data, {
      ...options,
      learningRate: num('lr', 1e-3),
      latentNoise: 0.03,
      saveEvery: num('save-every', 100),
      save: () => saveVaeDecoder(join(out, 'vae'), vae.params, TINY_VAE_CONFIG),
    });
    console.log(`\ndecoder: ${result.steps} steps in ${result.seconds.toFixed(0)} s`);
    return;
  }
  if (command === 'train-base') {
    let unet: UNetModel;
    if (values.resume) unet = await loadUNet(join(resolve(values.resume), 'unet'));
    else {
      unet = new UNetModel(TINY_UNET_CONFIG);
      // The output conv starts at zero (ldm zero_module(out[2])).
      initParams(unet.params, num('seed', 1), (name) => name.startsWith('out.2.'));
    }
    const options = loopOptions({ steps: 3000, batch: 32 }, 'base');
    const result = await trainBaseUNet(unet, data, await embeddings(), {
      ...options,
      learningRate: num('lr', 5e-4),
      promptDrop: num('prompt-drop', 0.1),
      x0WeightCap: num('x0-weight-cap', 0),
      saveEvery: num('save-every', 100),
      save: () => saveUNet(join(out, 'unet'), unet.params, TINY_UNET_CONFIG),
    });
    console.log(`\nbase: ${result.steps} steps in ${result.seconds.toFixed(0)} s`);
    return;
  }
  if (command === 'train-controlnet') {
    const base = required('base');
    const unet = await loadUNet(join(base, 'unet'));
    const joinInit = (values['join-init'] ?? 'zero') as JoinInit;
    if (joinInit !== 'zero' && joinInit !== 'gaussian')
      throw new Error('--join-init must be zero or gaussian');
    const arch = values.arch ?? 'full';
    if (arch !== 'full' && arch !== 'lite') throw new Error('--arch must be full or lite');
    if (arch === 'lite' && values.resume) throw new Error('--arch lite runs are not saved, so not resumable');
    let net: ControlNetHead;
    if (values.resume) net = await loadControlNet(join(resolve(values.resume), 'controlnet'));
    else {
      net =
        arch === 'lite'
          ? new ControlNetLiteModel(TINY_CONTROLNET_CONFIG)
          : new ControlNetModel(TINY_CONTROLNET_CONFIG);
      initControlNetFromUNet(net, unet, { seed: num('seed', 1), joinInit });
    }
    const label = `controlnet${arch === 'lite' ? '-lite' : ''}(${joinInit})`;
    const options = loopOptions({ steps: 2000, batch: 16 }, label);
    const evalEvery = num('eval-every', 0);
    let evaluate: LoopOptions['evaluate'];
    if (evalEvery > 0) {
      const { fidelityEvaluator } = await import('./evaluate-cli.ts');
      evaluate = await fidelityEvaluator({
        base,
        unet,
        net,
        count: num('eval-count', 16),
        samplesDir: join(out, 'samples'),
      });
    }
    // ControlNet-lite is an ablation without a checkpoint layout: its runs log fidelity and are not saved.
    const saveEvery = arch === 'lite' ? 0 : num('save-every', 100);
    const result = await trainControlNet(unet, net, data, await embeddings(), {
      ...options,
      learningRate: num('lr', 1e-4),
      promptDrop: num('prompt-drop', 0),
      sdLocked: values['sd-locked'] !== 'false',
      onlyMidControl: values['only-mid-control'] === true,
      evalEvery: evalEvery || undefined,
      evaluate,
      saveEvery,
      save: async (step) => {
        if (arch === 'lite') return;
        await saveControlNet(join(out, 'controlnet'), net.params, TINY_CONTROLNET_CONFIG);
        await saveControlNet(join(out, 'checkpoints', `step-${step}`), net.params, TINY_CONTROLNET_CONFIG);
        if (values['sd-locked'] === 'false') await saveUNet(join(out, 'unet'), unet.params, TINY_UNET_CONFIG);
      },
    });
    console.log(`\ncontrolnet: ${result.steps} steps in ${result.seconds.toFixed(0)} s`);
    await writeFile(join(out, 'losses.json'), JSON.stringify(result.losses));
    return;
  }
  throw new Error(`unknown command ${command}\n${USAGE}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
