import { env } from 'cloudflare:workers';
import type { Generation, WorkerJob } from '@contour/shared/contracts';
import { encodePng } from '@contour/shared/preprocess';
import { describe, expect, inject, it } from 'vitest';
import { actualWork } from '../src/billing/settle.ts';
import { replicateCall } from '../src/dispatch/replicate.ts';
import type { GenerationState } from '../src/generations/state.ts';
import { authedCall, jsonPost } from './support/accounts.ts';
import { syntheticImage, syntheticPngDataUrl, toBase64 } from './support/images.ts';

const fake = inject('fakeWorkerUrl' as never) as string;
const postJson = (body: unknown) => authedCall('/v1/generations', jsonPost(body));
const image = syntheticPngDataUrl(96, 64);
const initPng = encodePng(syntheticImage(128, 128));
const initImage = `data:image/png;base64,${toBase64(initPng)}`;
const mask = syntheticPngDataUrl(128, 128);

async function waitTerminal(id: string, timeoutMs = 20_000): Promise<Generation> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const generation = (await (await authedCall(`/v1/generations/${id}`)).json()) as Generation;
    if (['succeeded', 'failed', 'canceled'].includes(generation.status) || Date.now() > until)
      return generation;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function errorOf(response: Response) {
  return ((await response.json()) as { error: { code: string; details: { path: string }[] } }).error;
}

describe('img2img and inpaint requests (edge -> queue -> worker job)', () => {
  it('stores init_image and mask and hands them to the worker with the resolved strength and blur', async () => {
    const base = {
      prompt: 'a house',
      controls: [{ type: 'canny', image }],
      width: 256,
      height: 256,
      steps: 10,
    };
    const response = await postJson({ ...base, init_image: initImage, mask, strength: 0.5 });
    expect(response.status).toBe(202);
    const created = (await response.json()) as Generation;
    // Priced by the steps that run (10 * 0.5) plus the encoder pass, not all 10.
    const plain = (await (await postJson(base)).json()) as Generation;
    expect(created.cost.credits).toBeLessThan(plain.cost.credits);
    expect(created.progress).toEqual({ step: 0, total: 5 });
    const done = await waitTerminal(created.id);
    expect(done.status).toBe('succeeded');
    // Settled on the steps the worker ran (the fake runs them all: 10) plus the encoder pass, capped by the hold.
    expect(done.cost).toMatchObject({ captured: true, credits: created.cost.credits });
    await waitTerminal(plain.id);
    const log = (await (await fetch(`${fake}/_log`)).json()) as {
      job_id?: string;
      image_modes?: Record<string, unknown>;
    }[];
    const entry = log.find((e) => e.job_id === created.id);
    expect(entry?.image_modes).toEqual({
      init_image: `inputs/${created.id}/init_image.png`,
      mask: `inputs/${created.id}/mask.png`,
      strength: 0.5,
      mask_blur: 5,
    });
    expect(log.find((e) => e.job_id === plain.id)?.image_modes).toBeUndefined();
    const stored = await env.IMAGES.get(`inputs/${created.id}/init_image.png`);
    expect(new Uint8Array(await stored!.arrayBuffer())).toEqual(initPng);
  });

  it('defaults img2img strength to 0.8 and leaves out mask fields', async () => {
    const created = (await (
      await postJson({ prompt: 'x', controls: [{ type: 'canny', image }], steps: 2, init_image: initImage })
    ).json()) as Generation;
    expect((await waitTerminal(created.id)).status).toBe('succeeded');
    const log = (await (await fetch(`${fake}/_log`)).json()) as { job_id?: string; image_modes?: unknown }[];
    expect(log.find((e) => e.job_id === created.id)?.image_modes).toEqual({
      init_image: `inputs/${created.id}/init_image.png`,
      strength: 0.8,
    });
  });

  it('422s name the field at fault', async () => {
    const controls = [{ type: 'canny', image }];
    const cases: [unknown, string][] = [
      [{ prompt: 'x', controls, mask }, 'mask'],
      [{ prompt: 'x', controls, strength: 0.4 }, 'strength'],
      [{ prompt: 'x', controls, init_image: initImage, strength: 0 }, 'strength'],
      [{ prompt: 'x', controls, init_image: initImage, mask_blur: 2 }, 'mask_blur'],
      [{ prompt: 'x', controls, init_image: 'data:image/png;base64,AAAAAAAAAAAAAAAAAAAA' }, 'init_image'],
      [
        { prompt: 'x', controls, init_image: initImage, mask: 'data:image/png;base64,AAAAAAAAAAAAAAAAAAAA' },
        'mask',
      ],
    ];
    for (const [body, path] of cases) {
      const response = await postJson(body);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(422);
      const error = await errorOf(response);
      expect(error.details.map((d) => d.path)).toContain(path);
    }
  });

  it('upscale sizes the output from init_image and 422s when that is over the caps', async () => {
    const created = (await (
      await postJson({
        prompt: 'x',
        controls: [{ type: 'tile', image: initImage, preprocess: false }],
        steps: 2,
        init_image: initImage,
        upscale: 3,
      })
    ).json()) as Generation;
    // 128 x 3 = 384 on both sides (a multiple of 64 within the caps), strength 0.5: 1 step runs.
    expect(created).toMatchObject({ width: 384, height: 384, progress: { step: 0, total: 1 } });
    await waitTerminal(created.id);
    const tooBig = await postJson({
      prompt: 'x',
      controls: [{ type: 'canny', image }],
      init_image: syntheticPngDataUrl(300, 300),
      upscale: 4,
    });
    expect(tooBig.status).toBe(422);
    const error = await errorOf(tooBig);
    expect(error.details).toEqual([
      { path: 'upscale', message: expect.stringContaining('outside 256..1024') },
    ]);
  });

  it('settles on the steps the worker ran plus the encoder pass, without applying strength twice', () => {
    const state = {
      width: 512,
      height: 512,
      steps: 5, // the worker ran int(10 * 0.5)
      num_images: 1,
      outputs: [],
      credits: 100,
      job: { controls: [{}], init_image: { key: 'k' }, strength: 0.5 },
    } as unknown as GenerationState;
    expect(actualWork(state).credits).toBe(6);
  });

  it('is never sent to Replicate, whose ControlNet models are text-to-image only', () => {
    const job = {
      controls: [{ preprocess: true, image: { url: 'https://x.test/a.png' } }],
      guess_mode: false,
      scheduler: 'ddim',
      init_image: { url: 'https://x.test/i.png' },
    } as unknown as WorkerJob;
    expect(replicateCall(job)).toMatch(/no img2img or inpaint/);
  });
});
