/**
 * End to end in real headless Chromium: `npm start`'s stack (scripts/start.mjs: the real GPU worker with its
 * built-in model, the edge under wrangler's dev server with local D1/R2/DO/Queues, migrations, the dev
 * account) on free ports and a throwaway state directory; the playground uploads a photo, shows the Canny
 * preview from /v1/preprocess, generates, follows the progress bar to the last step and shows the image.
 * A screenshot is saved to tests/artifacts/playground.png.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Contour } from '@contour/sdk';
import { decodeImage, encodePng, hwc3, resizeImageTo } from '@contour/shared/preprocess';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT, type Stack, startStack, stopStack } from './stack.ts';

const FIXTURE = path.join(ROOT, 'tests/fixtures/toy.png');
const ARTIFACTS = path.join(ROOT, 'tests/artifacts');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const STEPS = 3;

let stack: Stack | undefined;
let browser: BrowserContext | undefined;
const temporary: string[] = [];

/** One line instead of a launch stack trace when the browser is missing (CI installs it). */
function chromiumMissing(): Error {
  const error = new Error(
    `Chromium not found at ${CHROMIUM}: install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM_PATH`,
  );
  error.stack = error.message;
  return error;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw chromiumMissing();
  const stateDir = await mkdtemp(path.join(tmpdir(), 'contour-e2e-state-'));
  const profileDir = await mkdtemp(path.join(tmpdir(), 'contour-e2e-chromium-'));
  // An empty annotator folder: network preprocessors have no weights here.
  const annotatorDir = await mkdtemp(path.join(tmpdir(), 'contour-e2e-annotators-'));
  temporary.push(stateDir, profileDir, annotatorDir);
  stack = await startStack({
    CONTOUR_EDGE_PORT: String(await freePort()),
    CONTOUR_WORKER_PORT: String(await freePort()),
    CONTOUR_STATE_DIR: stateDir,
    CONTOUR_ANNOTATOR_DIR: annotatorDir,
  });
  // A new, empty profile; flags keep Chromium from any network call of its own.
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await stopStack(stack);
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
}, 60_000);

/** A new tab on the playground, ready, collecting the page's uncaught errors. */
async function openPlayground(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser!.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(stack!.playground);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, problems };
}

/** The natural width of an image once it has loaded (0 before). */
function loadedWidth(image: Locator): Promise<number> {
  return image.evaluate((img: HTMLImageElement) => (img.complete ? img.naturalWidth : 0));
}

describe('playground in Chromium', () => {
  it('opens fresh with no console error, no failed request, a favicon, no broken image and a drawing hint', async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning')
        problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('requestfailed', (request) =>
      problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`),
    );
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    await page.goto(stack!.playground);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForLoadState('networkidle');

    // The icon the page links is served as an image.
    const icon = await page.evaluate(async () => {
      const href = document.querySelector<HTMLLinkElement>('link[rel="icon"]')?.href;
      const response = href ? await fetch(href) : undefined;
      return { href, status: response?.status, type: response?.headers.get('content-type') };
    });
    expect(icon).toMatchObject({ status: 200, type: 'image/svg+xml' });
    // Every image shown has loaded (an <img> without a source is kept invisible, not a broken icon).
    const broken = await page.evaluate(() =>
      [...document.images]
        .filter((img) => getComputedStyle(img).visibility !== 'hidden' && img.offsetParent !== null)
        .filter((img) => !img.complete || img.naturalWidth === 0)
        .map((img) => img.outerHTML),
    );
    expect(broken).toEqual([]);
    // The empty canvas says where to draw, and the hint goes once something is drawn.
    const hint = page.locator('.unit [data-role="hint"]');
    expect(await hint.isVisible()).toBe(true);
    expect(await hint.textContent()).toMatch(/Draw here/);
    const box = (await page.locator('.unit canvas').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.6, { steps: 8 });
    await page.mouse.up();
    expect(await hint.isVisible()).toBe(false);
    await expect
      .poll(() => loadedWidth(page.locator('[data-testid="preview-0"]')), { timeout: 30_000 })
      .toBeGreaterThan(0);
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);

  it('uploads an image, previews Canny, generates with per-step progress and shows the result', async () => {
    const { page, problems } = await openPlayground();
    // The key moved from the URL fragment into the tab's storage.
    expect(new URL(page.url()).hash).toBe('');
    await expect.poll(() => page.textContent('#balance')).toMatch(/balance: [\d,]+ credits/);
    const balanceBefore = Number((await page.textContent('#balance'))!.replace(/\D/g, ''));

    await page.fill('#steps', String(STEPS));
    await page.fill('#image_resolution', '256');
    await page.setInputFiles('.unit input[type=file]', FIXTURE);
    const preview = page.locator('[data-testid="preview-0"]');
    await expect.poll(() => loadedWidth(preview), { timeout: 30_000 }).toBe(256);
    expect(await page.textContent('.unit [data-role="status"]')).toBe('canny 256×256');
    // Images are private: the preview loads through a signed, expiring URL (no credentials on <img>).
    expect(await preview.getAttribute('src')).toMatch(
      /\/v1\/images\/controls\/.+\/canny\.png\?exp=\d+&sig=[\w-]+$/,
    );

    // Record every progress value the bar shows while generating.
    await page.evaluate(() => {
      const bar = document.getElementById('progress') as HTMLProgressElement;
      const seen: number[] = [];
      (window as unknown as { seen: number[] }).seen = seen;
      const original = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value')!;
      Object.defineProperty(bar, 'value', {
        get: () => original.get!.call(bar),
        set: (value: number) => {
          original.set!.call(bar, value);
          seen.push(value);
        },
      });
    });
    await page.click('#generate');
    const output = page.locator('#gallery img.output').first();
    await output.waitFor({ timeout: 90_000 });
    await expect.poll(() => loadedWidth(output), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await page.textContent('#error')).toBe('');
    expect(await page.textContent('#progress-text')).toBe(`step ${STEPS} / ${STEPS}`);
    const bar = await page.evaluate(() => {
      const element = document.getElementById('progress') as HTMLProgressElement;
      return { value: element.value, max: element.max, seen: (window as unknown as { seen: number[] }).seen };
    });
    expect(bar).toMatchObject({ value: STEPS, max: STEPS });
    // The bar moved through the steps (it may skip one when events arrive together), never backwards.
    expect(bar.seen).toEqual([...bar.seen].sort((a, b) => a - b));
    expect(new Set(bar.seen).size).toBeGreaterThan(2);
    // The control map sits beside the result, with the cost; the balance went down by it.
    const mapLoaded = await page
      .locator('#gallery img.control-map')
      .first()
      .evaluate((img: HTMLImageElement) => img.naturalWidth);
    expect(mapLoaded).toBeGreaterThan(0);
    const costText = (await page.textContent('#gallery .cost'))!;
    const credits = Number(/^(\d+) credits/.exec(costText)?.[1]);
    expect(credits).toBeGreaterThan(0);
    await expect
      .poll(async () => Number((await page.textContent('#balance'))!.replace(/\D/g, '')))
      .toBe(balanceBefore - credits);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'playground.png'), fullPage: true });
    expect(problems).toEqual([]);
  }, 180_000);

  it('lists the preprocessors of the chosen type; a network one without weights says which to install', async () => {
    const { page, problems } = await openPlayground();
    const select = page.locator('[data-testid="preprocessor-0"]');
    const options = () =>
      select.locator('option').evaluateAll((all) => all.map((o) => (o as HTMLOptionElement).value));
    // Canny has its one edge preprocessor; no detect-resolution control for it.
    expect(await options()).toEqual(['canny']);
    expect(await page.locator('.unit [data-role="network"]').isVisible()).toBe(false);
    await page.selectOption('.unit select[data-role="type"]', 'lineart');
    expect(await options()).toEqual(['invert', 'lineart_realistic', 'lineart_coarse']);
    // /v1/models says the worker lacks its weights; the option says so.
    expect(await select.locator('option[value="lineart_realistic"]').textContent()).toContain(
      'weights not installed',
    );
    await select.selectOption('lineart_realistic');
    // A network preprocessor: detect resolution (the API default) and pixel perfect.
    expect(await page.locator('.unit [data-role="network"]').isVisible()).toBe(true);
    expect(await page.inputValue('.unit [data-role="detect"]')).toBe('512');
    await page.check('.unit [data-role="pixel-perfect"]');
    expect(await page.locator('.unit [data-role="detect"]').isDisabled()).toBe(true);
    await page.fill('#image_resolution', '256');
    // The preview goes through the worker, which has no annotator weights here: the page names them.
    // The request JSON of each /v1/preprocess and /v1/generations call (multipart bodies are not visible to the browser's network log).
    await page.evaluate(() => {
      const sent: string[] = [];
      (window as unknown as { sent: string[] }).sent = sent;
      const original = window.fetch;
      window.fetch = (input, init) => {
        if (/\/v1\/(preprocess|generations)$/.test(String(input)) && init?.body instanceof FormData)
          sent.push(String(init.body.get('request')));
        return original(input, init);
      };
    });
    await page.setInputFiles('.unit input[type=file]', FIXTURE);
    const status = page.locator('.unit [data-role="status"]');
    await expect.poll(() => status.textContent(), { timeout: 60_000 }).toMatch(/install weights/);
    expect(await status.textContent()).toContain('sk_model.pth');
    expect(await status.getAttribute('class')).toContain('problem');
    const sent = await page.evaluate(() => (window as unknown as { sent: string[] }).sent);
    expect(JSON.parse(sent.at(-1)!)).toMatchObject({
      preprocessor: 'lineart_realistic',
      pixel_perfect: true,
      params: {},
      image_resolution: 256,
    });
    // Back to the edge one: the preview works again.
    await select.selectOption('invert');
    expect(await page.locator('.unit [data-role="network"]').isVisible()).toBe(false);
    await expect.poll(() => status.textContent(), { timeout: 30_000 }).toBe('invert 256×256');
    await expect
      .poll(() => loadedWidth(page.locator('[data-testid="preview-0"]')), { timeout: 30_000 })
      .toBe(256);
    // Generating sends each unit's preprocessor (canny: the model here serves that head only).
    await page.selectOption('.unit select[data-role="type"]', 'canny');
    await page.fill('#steps', '2');
    await page.click('#generate');
    await page.locator('#gallery img.output').first().waitFor({ timeout: 90_000 });
    expect(await page.textContent('#error')).toBe('');
    const generation = await page.evaluate(() =>
      (window as unknown as { sent: string[] }).sent.filter((body) => body.includes('"controls"')).at(-1),
    );
    expect(JSON.parse(generation!).controls).toMatchObject([
      { type: 'canny', preprocessor: 'canny', preprocess: true, params: { low: 100, high: 200 } },
    ]);
    expect(problems).toEqual([]);
  }, 180_000);

  it("offers the built-in model's request, and a drawn circle comes back in the colours asked for", async () => {
    const { page, problems } = await openPlayground();
    // No weights are configured, so the worker runs the trained circles model and the page says so.
    expect(await page.textContent('#model-note')).toContain('contour-circles-tiny');
    expect(await page.inputValue('#prompt')).toBe('red circle with blue background');
    expect(await page.inputValue('#negative_prompt')).toBe('');
    await page.fill('#image_resolution', '256');
    await page.fill('#seed', '1');

    // Draw a circle with the mouse: centre (0.5, 0.45) of the canvas, radius 0.25 of its side.
    const canvas = page.locator('.unit canvas');
    const box = (await canvas.boundingBox())!;
    const centre = { x: 0.5, y: 0.45 };
    const radius = 0.25;
    const at = (angle: number) => ({
      x: box.x + box.width * (centre.x + radius * Math.cos(angle)),
      y: box.y + box.height * (centre.y + radius * Math.sin(angle)),
    });
    await page.mouse.move(at(0).x, at(0).y);
    await page.mouse.down();
    for (let k = 1; k <= 96; k++)
      await page.mouse.move(at((k / 96) * 2 * Math.PI).x, at((k / 96) * 2 * Math.PI).y);
    await page.mouse.up();
    const preview = page.locator('[data-testid="preview-0"]');
    await expect.poll(() => loadedWidth(preview), { timeout: 30_000 }).toBe(256);

    await page.click('#generate');
    const output = page.locator('#gallery img.output').first();
    await output.waitFor({ timeout: 90_000 });
    await expect.poll(() => loadedWidth(output), { timeout: 30_000 }).toBe(256);
    // Mean colour well inside the drawn circle and well outside it, read back from the shown image.
    const colours = await output.evaluate(
      (img: HTMLImageElement, geometry) => {
        const side = img.naturalWidth;
        const canvas = document.createElement('canvas');
        canvas.width = side;
        canvas.height = side;
        const context = canvas.getContext('2d')!;
        context.drawImage(img, 0, 0);
        const { data } = context.getImageData(0, 0, side, side);
        const inside = [0, 0, 0, 0];
        const outside = [0, 0, 0, 0];
        for (let y = 0; y < side; y++) {
          for (let x = 0; x < side; x++) {
            const r =
              Math.hypot(x / side - geometry.centre.x, y / side - geometry.centre.y) / geometry.radius;
            const sum = r < 0.6 ? inside : r > 1.4 ? outside : undefined;
            if (!sum) continue;
            for (let c = 0; c < 3; c++) sum[c]! += data[(y * side + x) * 4 + c]!;
            sum[3]!++;
          }
        }
        return {
          inside: inside.slice(0, 3).map((v) => v / inside[3]!),
          outside: outside.slice(0, 3).map((v) => v / outside[3]!),
        };
      },
      { centre, radius },
    );
    const [ri, gi, bi] = colours.inside as [number, number, number];
    const [ro, go, bo] = colours.outside as [number, number, number];
    expect(ri - Math.max(gi, bi), JSON.stringify(colours)).toBeGreaterThan(60);
    expect(bo - Math.max(ro, go), JSON.stringify(colours)).toBeGreaterThan(60);
    await page.screenshot({ path: path.join(ARTIFACTS, 'playground-circle.png'), fullPage: true });
    expect(problems).toEqual([]);
  }, 180_000);

  it('uploads a start image, paints a mask over it and inpaints with the strength asked for', async () => {
    const { page, problems } = await openPlayground();
    await page.fill('#image_resolution', '256');
    await page.fill('#steps', '8');
    await page.setInputFiles('.unit input[type=file]', FIXTURE);
    await page.setInputFiles('#init-file', FIXTURE);
    const overlay = page.locator('[data-testid="mask-canvas"]');
    await overlay.waitFor();
    // Paint a horizontal stroke across the middle with the mouse.
    const box = (await overlay.boundingBox())!;
    const y = box.y + box.height * 0.5;
    await page.mouse.move(box.x + box.width * 0.2, y);
    await page.mouse.down();
    for (let k = 1; k <= 24; k++) await page.mouse.move(box.x + box.width * (0.2 + (0.6 * k) / 24), y);
    await page.mouse.up();
    // The first stroke moved the untouched strength to 1 (inpaint from noise); ask for half instead.
    expect(await page.inputValue('#strength')).toBe('1');
    await page.fill('#strength', '0.5');
    // The mask sent is white along the stroke and black away from it.
    const mask = await page.evaluate(() => {
      const canvas = document.getElementById('mask-data') as HTMLCanvasElement;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      const at = (fx: number, fy: number) =>
        data[(Math.floor(fy * canvas.height) * canvas.width + Math.floor(fx * canvas.width)) * 4]!;
      return { stroke: [at(0.3, 0.5), at(0.5, 0.5), at(0.7, 0.5)], away: [at(0.5, 0.1), at(0.05, 0.9)] };
    });
    expect(mask).toEqual({ stroke: [255, 255, 255], away: [0, 0] });

    await page.click('#generate');
    const output = page.locator('#gallery img.output').first();
    await output.waitFor({ timeout: 90_000 });
    await expect.poll(() => loadedWidth(output), { timeout: 30_000 }).toBe(256);
    expect(await page.textContent('#error')).toBe('');
    // int(8 * 0.5) = 4 steps ran: the start image and strength reached the worker.
    expect(await page.textContent('#progress-text')).toBe('step 4 / 4');
    await page.screenshot({ path: path.join(ARTIFACTS, 'playground-inpaint.png'), fullPage: true });
    expect(problems).toEqual([]);
  }, 180_000);
});

describe('the API end to end (SDK in Node -> edge -> queue -> real GPU worker -> R2)', () => {
  it('completes a generation with per-step progress, serves its images, and reproduces it from the seed', async () => {
    const url = new URL(stack!.playground);
    const apiKey = new URLSearchParams(url.hash.slice(1)).get('key')!;
    const contour = new Contour({ apiKey, baseUrl: url.origin });
    const photo = new Uint8Array(await readFile(FIXTURE));
    const request = {
      prompt: 'a toy',
      controls: [{ type: 'canny' as const, image: photo }],
      steps: 2,
      image_resolution: 256,
      seed: 1234,
    };
    const steps: number[] = [];
    const first = await contour.generations.run(request, { onProgress: (p) => steps.push(p.step) });
    expect(first).toMatchObject({ status: 'succeeded', seed: 1234, progress: { step: 2, total: 2 } });
    expect(steps.at(-1)).toBe(2);
    const fetchBytes = async (href: string) => new Uint8Array(await (await fetch(href)).arrayBuffer());
    const output = await fetchBytes(first.outputs[0]!.url);
    const decoded = await decodeImage(output);
    expect([decoded.width, decoded.height]).toEqual([first.width, first.height]);
    expect(Math.min(first.width, first.height)).toBe(256);
    const map = await decodeImage(await fetchBytes(first.control_maps[0]!.url));
    expect(map.data.some((v) => v === 255)).toBe(true);
    // Same seed, same request: the worker's seeded noise makes the image bit-identical.
    const second = await contour.generations.run(request);
    expect(second.id).not.toBe(first.id);
    expect(await fetchBytes(second.outputs[0]!.url)).toEqual(output);
    const listed = await contour.generations.list({ limit: 2 });
    expect(listed.data.map((g) => g.id)).toEqual([second.id, first.id]);
  }, 180_000);

  it('img2img, inpaint (unmasked pixels exactly the input) and upscale through the real worker', async () => {
    const url = new URL(stack!.playground);
    const apiKey = new URLSearchParams(url.hash.slice(1)).get('key')!;
    const contour = new Contour({ apiKey, baseUrl: url.origin });
    const photo = new Uint8Array(await readFile(FIXTURE));
    const fetchBytes = async (href: string) => new Uint8Array(await (await fetch(href)).arrayBuffer());
    const base = {
      prompt: 'a toy',
      controls: [{ type: 'canny' as const, image: photo }],
      width: 256,
      height: 256,
    };

    const img2img = await contour.generations.run({ ...base, steps: 6, init_image: photo, strength: 0.5 });
    expect(img2img).toMatchObject({ status: 'succeeded', progress: { step: 3, total: 3 } });

    // Left half white: repaint it; the right half (beyond the blur) must come back as the input, resized.
    const side = 256;
    const maskData = new Uint8Array(side * side * 3);
    for (let y = 0; y < side; y++) maskData.fill(255, y * side * 3, y * side * 3 + (side / 2) * 3);
    const mask = encodePng({ width: side, height: side, channels: 3, data: maskData });
    const inpaint = await contour.generations.run({
      ...base,
      steps: 3,
      init_image: photo,
      mask,
      mask_blur: 2,
    });
    expect(inpaint.status).toBe('succeeded');
    const output = hwc3(await decodeImage(await fetchBytes(inpaint.outputs[0]!.url)));
    const input = hwc3(resizeImageTo(await decodeImage(photo), side, side));
    let kept = 0;
    let changed = 0;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        for (let c = 0; c < 3; c++) {
          const i = (y * side + x) * 3 + c;
          if (x >= side / 2 + 20) {
            kept++;
            if (output.data[i] !== input.data[i]) throw new Error(`unmasked pixel ${x},${y} changed`);
          } else if (x < side / 2 - 20 && output.data[i] !== input.data[i]) changed++;
        }
      }
    }
    expect(kept).toBeGreaterThan(side * side);
    expect(changed).toBeGreaterThan(side * side);

    // Upscale: the output size is the input's times the factor (on the 64 grid).
    const small = encodePng(resizeImageTo(hwc3(await decodeImage(photo)), 256, 256));
    const upscaled = await contour.generations.run({
      prompt: 'a toy',
      controls: [{ type: 'canny' as const, image: small }],
      steps: 4,
      init_image: small,
      upscale: 1.5,
    });
    expect(upscaled).toMatchObject({ status: 'succeeded', width: 384, height: 384, progress: { total: 2 } });
    const big = await decodeImage(await fetchBytes(upscaled.outputs[0]!.url));
    expect([big.width, big.height]).toEqual([384, 384]);
  }, 180_000);
});
