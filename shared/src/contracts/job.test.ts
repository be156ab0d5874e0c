import { describe, expect, it } from 'vitest';
import { GenerationEventSchema } from './events.ts';
import { type WorkerJob, WorkerJobSchema, WorkerMessageSchema } from './job.ts';

const job: WorkerJob = {
  version: 1,
  job_id: 'job_1',
  generation_id: 'gen_abcdefgh12',
  attempt: 1,
  base_model: 'sd15',
  prompt: 'a house, best quality, extremely detailed',
  negative_prompt: 'lowres',
  width: 512,
  height: 512,
  steps: 20,
  guidance_scale: 9,
  eta: 0,
  seed: 12345,
  num_images: 1,
  guess_mode: false,
  scheduler: 'ddim',
  output_format: 'png',
  controls: [
    {
      type: 'canny',
      image: {
        key: 'controls/gen_abcdefgh12/0.png',
        url: 'http://localhost:8787/v1/images/controls/gen_abcdefgh12/0.png',
        width: 512,
        height: 512,
        content_type: 'image/png',
        sha256: 'a'.repeat(64),
      },
      preprocess: false,
      params: { low: 100, high: 200 },
      strength: 1,
      start: 0,
      end: 1,
    },
  ],
  deadline_at: 1_800_000_000_000,
};

describe('internal contracts', () => {
  it('round-trips a worker job through JSON and stays under the 128 KB queue message limit', () => {
    const wire = JSON.stringify(job);
    expect(WorkerJobSchema.parse(JSON.parse(wire))).toEqual(job);
    expect(new TextEncoder().encode(wire).length).toBeLessThan(128 * 1024);
  });

  it('refuses an unknown contract version and bad image references', () => {
    expect(WorkerJobSchema.safeParse({ ...job, version: 2 }).success).toBe(false);
    const badRef = {
      ...job,
      controls: [{ ...job.controls[0]!, image: { ...job.controls[0]!.image, sha256: 'xyz' } }],
    };
    const result = WorkerJobSchema.safeParse(badRef);
    expect(result.error?.issues[0]?.path).toEqual(['controls', 0, 'image', 'sha256']);
  });

  it('takes every sampler and refuses lcm beyond its 50 steps, naming steps', () => {
    expect(WorkerJobSchema.parse({ ...job, scheduler: 'dpmpp_2m_karras' }).scheduler).toBe('dpmpp_2m_karras');
    const lcm = WorkerJobSchema.safeParse({ ...job, scheduler: 'lcm', steps: 51 });
    expect(lcm.success).toBe(false);
    expect(lcm.error!.issues.map((i) => i.path.join('.'))).toEqual(['steps']);
    expect(WorkerJobSchema.safeParse({ ...job, scheduler: 'lcm', steps: 50 }).success).toBe(true);
  });

  it('discriminates worker messages and events by type', () => {
    expect(WorkerMessageSchema.parse({ type: 'progress', job_id: 'j', step: 3, total: 20 }).type).toBe(
      'progress',
    );
    expect(
      WorkerMessageSchema.safeParse({
        type: 'error',
        job_id: 'j',
        code: 'made_up',
        message: 'x',
        retryable: true,
      }).success,
    ).toBe(false);
    expect(
      GenerationEventSchema.safeParse({
        type: 'generation.progress',
        generation_id: 'gen_abcdefgh12',
        sequence: 4,
        created_at: '2026-11-24T00:00:00.000Z',
        step: 4,
        total: 20,
      }).success,
    ).toBe(true);
  });
});
