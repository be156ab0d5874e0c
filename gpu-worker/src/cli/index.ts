/**
 * `contour-worker`: the operator CLI. Generate from a prompt and a control image to PNG files without the edge,
 * make a control map only, or run the HTTP worker. `contour-worker help` lists the options.
 */
import { realpathSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CONTROL_TYPES, type ControlType, ControlTypeSchema } from '@contour/shared/contracts';
import { decodeImage, encodePng, resizeImageTo, resizeTarget } from '@contour/shared/preprocess';
import { SingleBar } from 'cli-progress';
import type { BackendChoice } from '../backend.ts';
import { type EngineChoice, engineSettingsFromEnv, selectEngine } from '../engine/select.ts';
import { readModelConfig } from '../registry/config.ts';
import {
  BUILTIN_MODELS,
  type BuiltinModelName,
  builtinModelNamed,
  createBuiltinRegistry,
  createRegistryFromConfig,
} from '../registry/registry.ts';
import { SAMPLER_NAMES, type SamplerName } from '../schedulers/sampler.ts';
import { TfGenerationEngine } from '../service/engine.ts';
import { controlFromImage, encodeOutput } from '../service/images.ts';

/** Raised for bad command-line usage; printed without a stack trace. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'cli_usage';
}

const USAGE = `contour-worker <command> [options]

Commands
  generate    prompt + control image -> PNG(s)
  preprocess  control image -> control map PNG (no model)
  serve       run the HTTP worker (same as gpu-worker/src/main.ts; settings from the environment)
  doctor      check this host before it takes traffic: GPU, CUDA/cuDNN libraries, each engine (and why
              not), parity with the original code on each usable engine, steps/s at 512x512
              [--json] [--skip-speed] [--steps N (3)]

generate
  --prompt TEXT            (required)
  --control TYPE=PATH      control type and image, e.g. canny=photo.png (required; repeatable)
  --out FILE.png           output; with --num-images N, FILE-1.png ... (default out.png)
  --negative TEXT          negative prompt (default empty)
  --width N --height N     output size (default: the image's size scaled to 512 on the short side, x64)
  --steps N (20)  --guidance X (9)  --seed N (0)  --num-images N (1)  --eta X (0)
  --scheduler NAME         ddim (default) | unipc | dpmpp_2m | dpmpp_2m_karras | euler_a | lcm
  --strength X (1)  --guess-mode  --no-preprocess (the image already is the control map)
  --low N --high N         canny thresholds (100 / 200)
  --save-control FILE.png  also write the control map used
  --model-config FILE      model config JSON (default: $CONTOUR_MODEL_CONFIG, else the built-in model)
  --builtin circles|random which built-in model (default: $CONTOUR_BUILTIN_MODEL, else circles)
  --engine NAME            auto | tfjs | onnxruntime (default: CONTOUR_ENGINE, else auto)
  --backend NAME           tfjs backend: tensorflow-gpu | tensorflow | wasm | cpu (implies --engine tfjs)

preprocess
  --type TYPE --image PATH --out FILE.png [--width N --height N] [--low N --high N]
`;

const OPTIONS = {
  prompt: { type: 'string' },
  negative: { type: 'string', default: '' },
  control: { type: 'string', multiple: true },
  type: { type: 'string' },
  image: { type: 'string' },
  out: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  steps: { type: 'string', default: '20' },
  guidance: { type: 'string', default: '9' },
  seed: { type: 'string', default: '0' },
  'num-images': { type: 'string', default: '1' },
  eta: { type: 'string', default: '0' },
  scheduler: { type: 'string', default: 'ddim' },
  strength: { type: 'string', default: '1' },
  low: { type: 'string', default: '100' },
  high: { type: 'string', default: '200' },
  'guess-mode': { type: 'boolean', default: false },
  'no-preprocess': { type: 'boolean', default: false },
  'save-control': { type: 'string' },
  'model-config': { type: 'string' },
  builtin: { type: 'string' },
  backend: { type: 'string' },
  engine: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function numberOption(values: Values, name: keyof Values, integer = false): number {
  const raw = values[name];
  const value = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got "${String(raw)}"`);
  }
  return value;
}

function controlType(name: string): ControlType {
  const parsed = ControlTypeSchema.safeParse(name);
  if (!parsed.success)
    throw new UsageError(`unknown control type "${name}" (one of ${CONTROL_TYPES.join(', ')})`);
  return parsed.data;
}

/** Output size: explicit, else the original apps' rule (short side 512, both sides multiples of 64). */
function outputSize(values: Values, image: { width: number; height: number }) {
  if (values.width !== undefined || values.height !== undefined) {
    if (values.width === undefined || values.height === undefined) {
      throw new UsageError('give both --width and --height, or neither');
    }
    return { width: numberOption(values, 'width', true), height: numberOption(values, 'height', true) };
  }
  const target = resizeTarget(image.width, image.height, 512);
  return { width: target.width, height: target.height };
}

async function readImage(path: string) {
  return decodeImage(new Uint8Array(await readFile(path)));
}

async function preprocessCommand(values: Values, log: (line: string) => void): Promise<void> {
  if (!values.type || !values.image || !values.out)
    throw new UsageError('preprocess needs --type, --image and --out');
  const type = controlType(values.type);
  const image = await readImage(values.image);
  const size = outputSize(values, image);
  const params = { low: numberOption(values, 'low', true), high: numberOption(values, 'high', true) };
  const control = controlFromImage(type, resizeImageTo(image, size.width, size.height), true, params);
  await writeFile(values.out, encodePng(control.image8));
  log(`wrote ${values.out} (${type}, ${size.width}x${size.height})`);
}

async function generateCommand(values: Values, log: (line: string) => void): Promise<void> {
  if (!values.prompt) throw new UsageError('generate needs --prompt');
  if (!values.control?.length) throw new UsageError('generate needs --control TYPE=PATH');
  const scheduler = values.scheduler as SamplerName;
  if (!SAMPLER_NAMES.includes(scheduler)) {
    throw new UsageError(`--scheduler must be one of ${SAMPLER_NAMES.join(', ')}, got "${scheduler}"`);
  }
  const units = await Promise.all(
    values.control.map(async (spec) => {
      const at = spec.indexOf('=');
      if (at <= 0) throw new UsageError(`--control must be TYPE=PATH, got "${spec}"`);
      return { type: controlType(spec.slice(0, at)), image: await readImage(spec.slice(at + 1)) };
    }),
  );
  const size = outputSize(values, units[0]!.image);
  const params = { low: numberOption(values, 'low', true), high: numberOption(values, 'high', true) };
  const strength = numberOption(values, 'strength');
  const controls = units.map((unit) => ({
    type: unit.type,
    ...controlFromImage(
      unit.type,
      resizeImageTo(unit.image, size.width, size.height),
      !values['no-preprocess'],
      params,
    ),
  }));

  const settings = engineSettingsFromEnv();
  if (values.backend) {
    settings.tfBackend = values.backend as BackendChoice;
    if (!process.env['CONTOUR_ENGINE']) settings.engine = 'tfjs';
  }
  if (values.engine) settings.engine = values.engine as EngineChoice;
  const selected = await selectEngine({ settings, log });
  const configPath = values['model-config'] ?? (process.env['CONTOUR_MODEL_CONFIG'] || undefined);
  const registry = configPath
    ? await createRegistryFromConfig(await readModelConfig(configPath))
    : await createBuiltinRegistry({ model: builtinModel(values['builtin']) });
  if (registry.base.builtin) {
    log(
      registry.base.nativeResolution
        ? `no model configured: using the built-in model ${registry.base.name} (coloured circles, sampled at ${registry.base.nativeResolution}px and resized)`
        : 'no model configured: using the built-in model (random weights, not a real SD1.5)',
    );
  }
  const engine = new TfGenerationEngine(registry, selected.engine);
  const bar = new SingleBar({
    format: 'denoising [{bar}] {value}/{total} steps | {duration_formatted} elapsed | eta {eta_formatted}',
    hideCursor: true,
  });
  const steps = numberOption(values, 'steps', true);
  bar.start(engine.actualSteps(steps, scheduler), 0);
  try {
    const [result] = await engine.run(
      [
        {
          prompt: values.prompt,
          negativePrompt: values.negative ?? '',
          seed: numberOption(values, 'seed', true),
          numImages: numberOption(values, 'num-images', true),
          controls: controls.map((c) => ({ type: c.type, map: c.map, strength, start: 0, end: 1 })),
        },
      ],
      {
        ...size,
        steps,
        scheduler,
        guidanceScale: numberOption(values, 'guidance'),
        eta: numberOption(values, 'eta'),
        guessMode: values['guess-mode'] ?? false,
      },
      { onStep: (step) => bar.update(step) },
    );
    bar.stop();
    const out = values.out ?? 'out.png';
    const paths = result!.images.map((_, i) => (i === 0 ? out : out.replace(/(\.png)?$/i, `-${i}.png`)));
    await Promise.all(
      result!.images.map(async (image, i) => writeFile(paths[i]!, await encodeOutput(image, 'png'))),
    );
    if (values['save-control']) await writeFile(values['save-control'], encodePng(controls[0]!.image8));
    const timings = Object.entries(result!.timingsMs)
      .map(([stage, ms]) => `${stage} ${Math.round(ms)} ms`)
      .join(', ');
    log(
      `wrote ${paths.join(', ')} (${size.width}x${size.height}, ${result!.steps} steps on ${engine.backend}; ${timings})`,
    );
  } finally {
    bar.stop();
    registry.dispose();
  }
}

/** The built-in model named by `--builtin` or $CONTOUR_BUILTIN_MODEL (default circles). */
function builtinModel(option: string | undefined): BuiltinModelName {
  const name = option ?? (process.env['CONTOUR_BUILTIN_MODEL'] || 'circles');
  const model = builtinModelNamed(name);
  if (!model) throw new UsageError(`--builtin must be one of ${BUILTIN_MODELS.join(', ')}, got "${name}"`);
  return model;
}

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function runCli(
  argv: string[],
  log: (line: string) => void = (l) => console.log(l),
): Promise<number> {
  // doctor has options of its own: hand it its arguments before the generate/preprocess option parser sees them.
  if (argv[0] === 'doctor') {
    const { runDoctor } = await import('./doctor.ts');
    try {
      return await runDoctor(argv.slice(1), log);
    } catch (error) {
      console.error(`error: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
  }
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command] = parsed.positionals;
  if (parsed.values.help || !command || command === 'help') {
    log(USAGE);
    return command || parsed.values.help ? 0 : 2;
  }
  try {
    if (command === 'generate') await generateCommand(parsed.values, log);
    else if (command === 'preprocess') await preprocessCommand(parsed.values, log);
    else if (command === 'serve') {
      await import('../main.ts');
      return new Promise<number>(() => {}); // runs until a signal stops the process
    } else throw new UsageError(`unknown command "${command}"`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    const code = (error as { code?: unknown }).code;
    console.error(`error${typeof code === 'string' ? ` (${code})` : ''}: ${(error as Error).message}`);
    return 1;
  }
}

const invokedPath = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invokedPath && pathToFileURL(invokedPath).href === import.meta.url) {
  process.exitCode = await runCli(process.argv.slice(2));
}
