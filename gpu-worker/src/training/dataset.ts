import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { decodePng, encodePng, type Image8 } from '@contour/shared/preprocess';
import { splitmix32 } from './random.ts';

/**
 * The synthetic "circles" dataset, in the spirit of the ControlNet tutorial's fill50k: a filled circle of a named
 * colour on a background of another, the prompt naming both, and the circle's outline as a white-on-black edge
 * map. Deterministic by (seed, index), any size.
 */

/** The named colours and their RGB values; far apart so a nearest-colour test is unambiguous. */
export const CIRCLE_COLOURS = {
  red: [220, 30, 30],
  green: [30, 180, 40],
  blue: [30, 60, 220],
  yellow: [240, 220, 40],
  cyan: [40, 210, 220],
  magenta: [210, 40, 200],
  white: [245, 245, 245],
  black: [15, 15, 15],
} as const satisfies Record<string, readonly [number, number, number]>;

/** A colour name of {@link CIRCLE_COLOURS}. */
export type ColourName = keyof typeof CIRCLE_COLOURS;

/** Every colour name, in a fixed order. */
export const COLOUR_NAMES = Object.keys(CIRCLE_COLOURS) as ColourName[];

/** The geometry and colours of one sample. */
export interface CircleSpec {
  size: number;
  centerX: number;
  centerY: number;
  radius: number;
  circle: ColourName;
  background: ColourName;
}

/** One generated sample: prompt, target image (RGB) and source edge map (RGB, white outline on black). */
export interface CircleSample {
  spec: CircleSpec;
  prompt: string;
  target: Image8<3>;
  source: Image8<3>;
}

/** The prompt of a sample, as fill50k phrases it. */
export function circlePrompt(circle: ColourName, background: ColourName): string {
  return `${circle} circle with ${background} background`;
}

/** The random geometry and colour pair of sample `index` of the dataset `seed` at `size` pixels. */
export function circleSpec(seed: number, index: number, size: number): CircleSpec {
  if (!Number.isInteger(size) || size < 8) throw new RangeError(`size must be an integer >= 8, got ${size}`);
  const random = splitmix32(Math.imul(seed >>> 0, 0x2545f491) ^ Math.imul(index + 1, 0x9e3779b1));
  const radius = size * (0.16 + 0.18 * random());
  const margin = radius + 1;
  const centerX = margin + (size - 2 * margin) * random();
  const centerY = margin + (size - 2 * margin) * random();
  const circle = COLOUR_NAMES[Math.floor(random() * COLOUR_NAMES.length)]!;
  const others = COLOUR_NAMES.filter((c) => c !== circle);
  const background = others[Math.floor(random() * others.length)]!;
  return { size, centerX, centerY, radius, circle, background };
}

/** Whether the pixel (x, y) (its centre) lies inside the circle. */
function inside(spec: CircleSpec, x: number, y: number): boolean {
  const dx = x + 0.5 - spec.centerX;
  const dy = y + 0.5 - spec.centerY;
  return dx * dx + dy * dy <= spec.radius * spec.radius;
}

/**
 * Renders a spec: the filled circle, and its outline = the inside pixels with a 4-neighbour outside (the
 * boundary of the filled mask, one pixel wide).
 */
export function renderCircle(spec: CircleSpec): CircleSample {
  const { size } = spec;
  const target = new Uint8Array(size * size * 3);
  const source = new Uint8Array(size * size * 3);
  const fill = CIRCLE_COLOURS[spec.circle];
  const back = CIRCLE_COLOURS[spec.background];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const isIn = inside(spec, x, y);
      const colour = isIn ? fill : back;
      const p = (y * size + x) * 3;
      target.set(colour, p);
      const onOutline =
        isIn &&
        (!inside(spec, x - 1, y) ||
          !inside(spec, x + 1, y) ||
          !inside(spec, x, y - 1) ||
          !inside(spec, x, y + 1));
      if (onOutline) source.fill(255, p, p + 3);
    }
  }
  return {
    spec,
    prompt: circlePrompt(spec.circle, spec.background),
    target: { width: size, height: size, channels: 3, data: target },
    source: { width: size, height: size, channels: 3, data: source },
  };
}

/** Sample `index` of the dataset `seed` at `size` pixels. */
export function circleSample(seed: number, index: number, size: number): CircleSample {
  return renderCircle(circleSpec(seed, index, size));
}

/** One line of the tutorial's `prompt.json` (JSON lines): image paths relative to the dataset folder. */
export interface PromptLine {
  source: string;
  target: string;
  prompt: string;
}

/** Writes `count` samples as the tutorial's layout: `prompt.json`, `source/<i>.png`, `target/<i>.png`. */
export async function writeCircleDataset(
  dir: string,
  options: { seed: number; count: number; size: number; start?: number },
): Promise<void> {
  const start = options.start ?? 0;
  await mkdir(join(dir, 'source'), { recursive: true });
  await mkdir(join(dir, 'target'), { recursive: true });
  const lines: string[] = [];
  for (let i = start; i < start + options.count; i++) {
    const sample = circleSample(options.seed, i, options.size);
    const line: PromptLine = { source: `source/${i}.png`, target: `target/${i}.png`, prompt: sample.prompt };
    await writeFile(join(dir, line.source), encodePng(sample.source));
    await writeFile(join(dir, line.target), encodePng(sample.target));
    lines.push(JSON.stringify(line));
  }
  await writeFile(join(dir, 'prompt.json'), `${lines.join('\n')}\n`);
}

/** A loaded training example: images as HWC float in the model's ranges. */
export interface TrainingExample {
  prompt: string;
  /** Target RGB in [-1, 1]. */
  target: Float32Array;
  /** Source (control) RGB in [0, 1]. */
  source: Float32Array;
  size: number;
}

/** Raised for a dataset folder that cannot be read. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  constructor(
    readonly code: 'dataset_bad_line' | 'dataset_bad_image',
    message: string,
  ) {
    super(message);
  }
}

function rgbOf(image: Image8, file: string): Uint8Array {
  if (image.channels === 3) return image.data;
  if (image.channels !== 4) throw new DatasetError('dataset_bad_image', `${file}: expected an RGB image`);
  const out = new Uint8Array(image.width * image.height * 3);
  for (let i = 0; i < image.width * image.height; i++) out.set(image.data.subarray(i * 4, i * 4 + 3), i * 3);
  return out;
}

/** Examples from a sample in memory (no files), the same conversion as {@link readPromptJsonDataset}. */
export function exampleOf(sample: Pick<CircleSample, 'prompt' | 'target' | 'source'>): TrainingExample {
  const target = Float32Array.from(sample.target.data, (v) => v / 127.5 - 1);
  const source = Float32Array.from(sample.source.data, (v) => v / 255);
  return { prompt: sample.prompt, target, source, size: sample.target.width };
}

/** Reads a tutorial-layout dataset (`prompt.json` JSON lines `{source, target, prompt}` + PNG files). */
export async function readPromptJsonDataset(dir: string): Promise<TrainingExample[]> {
  const text = await readFile(join(dir, 'prompt.json'), 'utf8');
  const examples: TrainingExample[] = [];
  for (const [n, raw] of text.split('\n').entries()) {
    if (!raw.trim()) continue;
    let line: PromptLine;
    try {
      line = JSON.parse(raw) as PromptLine;
    } catch {
      throw new DatasetError('dataset_bad_line', `prompt.json line ${n + 1} is not JSON`);
    }
    if (
      typeof line.source !== 'string' ||
      typeof line.target !== 'string' ||
      typeof line.prompt !== 'string'
    ) {
      throw new DatasetError('dataset_bad_line', `prompt.json line ${n + 1} needs source, target and prompt`);
    }
    const source = decodePng(new Uint8Array(await readFile(join(dir, line.source))));
    const target = decodePng(new Uint8Array(await readFile(join(dir, line.target))));
    if (source.width !== target.width || source.height !== target.height || target.width !== target.height) {
      throw new DatasetError('dataset_bad_image', `${line.target}: source and target must be equal squares`);
    }
    examples.push(
      exampleOf({
        prompt: line.prompt,
        source: { ...source, channels: 3, data: rgbOf(source, line.source) },
        target: { ...target, channels: 3, data: rgbOf(target, line.target) },
      }),
    );
  }
  return examples;
}

/** Parent folder helper for writers. */
export async function ensureParent(file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
}
