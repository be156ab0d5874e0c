import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { encodePng } from '@contour/shared/preprocess';
import type { ControlNetHead } from '../models/controlnet.ts';
import type { UNetModel } from '../models/unet.ts';
import { ClipTokenizer } from '../text/tokenizer.ts';
import { loadControlNet, loadUNet, loadVaeDecoder } from '../weights/checkpoint.ts';
import { evaluateFidelity, heldOutConditions, sampleSheet, scoreGeneration } from './evaluate.ts';
import { lineChartPng } from './plot.ts';
import { createFrozenClip, PromptEmbeddings } from './text-encoder.ts';
import { TINY_CLIP_CONFIG, TINY_IMAGE_SIZE } from './tiny-config.ts';

/** The control F1 of real dataset images scored against another condition's outline: the chance level. */
export function chanceControlF1(count: number): number {
  const conditions = heldOutConditions(count + 1, TINY_IMAGE_SIZE);
  let sum = 0;
  for (let i = 0; i < count; i++) sum += scoreGeneration(conditions[i + 1]!.target, conditions[i]!).f1;
  return sum / count;
}

/** The frozen text encoder's prompt embeddings, as every evaluation of the circles models uses them. */
async function evaluationEmbeddings(): Promise<PromptEmbeddings> {
  return new PromptEmbeddings(createFrozenClip(TINY_CLIP_CONFIG), await ClipTokenizer.fromOpenAIVocab());
}

/** A base folder's UNet and decoder, and the prompt embeddings, for the evaluation commands. */
async function loadEvaluationBase(base: string) {
  const [unet, vaeDecoder, embeddings] = await Promise.all([
    loadUNet(join(base, 'unet')),
    loadVaeDecoder(join(base, 'vae')),
    evaluationEmbeddings(),
  ]);
  return { models: { unet, vaeDecoder }, embeddings };
}

/** An evaluator for the training loop: control and prompt fidelity of `net` on `count` held-out conditions. */
export async function fidelityEvaluator(options: {
  base: string;
  unet: UNetModel;
  net: ControlNetHead;
  count: number;
  /** Folder for a contact sheet PNG per evaluation (`step-<n>.png`). */
  samplesDir?: string;
}): Promise<(step: number) => Promise<Record<string, number>>> {
  const vae = await loadVaeDecoder(join(options.base, 'vae'));
  const embeddings = await evaluationEmbeddings();
  const conditions = heldOutConditions(options.count, TINY_IMAGE_SIZE);
  if (options.samplesDir) await mkdir(options.samplesDir, { recursive: true });
  return async (step) => {
    const report = await evaluateFidelity({
      models: { unet: options.unet, vaeDecoder: vae },
      embeddings,
      net: options.net,
      conditions,
    });
    if (options.samplesDir) {
      await writeFile(
        join(options.samplesDir, `step-${step}.png`),
        encodePng(sampleSheet(conditions, report.images)),
      );
    }
    return { controlF1: report.controlF1, promptFidelity: report.promptFidelity };
  };
}

/** `evaluate` command: the held-out fidelity of a base (+ ControlNet), with the base-alone and chance levels. */
export async function runEvaluateCommand(values: Record<string, unknown>): Promise<void> {
  const base = resolve(String(values['base'] ?? ''));
  const count = Number(values['count'] ?? 64);
  const { models, embeddings } = await loadEvaluationBase(base);
  const conditions = heldOutConditions(count, TINY_IMAGE_SIZE);
  const steps = Number(values['steps'] ?? 20);
  const started = performance.now();
  const baseOnly = await evaluateFidelity({ models, embeddings, conditions, steps });
  const result: Record<string, unknown> = {
    count,
    steps,
    chanceControlF1: chanceControlF1(count),
    baseOnly: { controlF1: baseOnly.controlF1, promptFidelity: baseOnly.promptFidelity },
  };
  const controlnetPath = values['controlnet']
    ? resolve(String(values['controlnet']))
    : join(base, 'controlnet-canny');
  const net = await loadControlNet(controlnetPath);
  const controlled = await evaluateFidelity({ models, embeddings, conditions, net, steps });
  result['controlnet'] = { controlF1: controlled.controlF1, promptFidelity: controlled.promptFidelity };
  result['seconds'] = (performance.now() - started) / 1000;
  const text = JSON.stringify(result, null, 2);
  console.log(text);
  if (values['out']) await writeFile(resolve(String(values['out'])), `${text}\n`);
}

/** Plots `controlF1` against step from JSON-lines training logs (label=path pairs) into a PNG. */
export async function plotFidelity(logs: { label: string; path: string }[], out: string): Promise<void> {
  const colours = [
    [200, 30, 30],
    [30, 60, 200],
    [30, 150, 40],
    [230, 130, 0],
    [140, 40, 170],
    [0, 150, 160],
  ] as const;
  const series = await Promise.all(
    logs.map(async ({ label, path }, i) => {
      const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
      const points = lines
        .map((l) => JSON.parse(l) as { event: string; step: number; controlF1?: number })
        .filter((r) => r.event === 'eval' && typeof r.controlF1 === 'number')
        .map((r) => ({ x: r.step, y: r.controlF1! }));
      return { label, colour: colours[i % colours.length]!, points };
    }),
  );
  await writeFile(out, lineChartPng(series, { title: 'CONTROL F1 VS STEP' }));
}

/**
 * `evaluate-checkpoints`: scores every `checkpoints/step-<n>` ControlNet of a run (fidelity against step, for runs
 * trained without inline evaluation), appending `eval` records to a JSON-lines log.
 */
export async function runEvaluateCheckpointsCommand(values: Record<string, unknown>): Promise<void> {
  const base = resolve(String(values['base'] ?? ''));
  const run = resolve(String(values['out'] ?? ''));
  const count = Number(values['eval-count'] ?? 16);
  const log = resolve(String(values['log'] ?? join(run, 'eval.jsonl')));
  const { models, embeddings } = await loadEvaluationBase(base);
  const conditions = heldOutConditions(count, TINY_IMAGE_SIZE);
  const { readdir, appendFile } = await import('node:fs/promises');
  const steps = (await readdir(join(run, 'checkpoints')))
    .map((name) => Number(/^step-(\d+)$/.exec(name)?.[1]))
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
  for (const step of steps) {
    const net = await loadControlNet(join(run, 'checkpoints', `step-${step}`));
    const report = await evaluateFidelity({ models, embeddings, net, conditions });
    net.dispose();
    const record = {
      event: 'eval',
      step,
      controlF1: report.controlF1,
      promptFidelity: report.promptFidelity,
    };
    console.log(JSON.stringify(record));
    await appendFile(log, `${JSON.stringify(record)}\n`);
  }
}
