import { describe, expect, it } from 'vitest';
import { startWorkerProcess } from './helpers.ts';

describe('gpu-worker with a forced engine that cannot load (real process)', () => {
  it('exits once with a message naming what is missing, instead of serving or restarting', async () => {
    const started = startWorkerProcess({ CONTOUR_ENGINE: 'onnxruntime', CONTOUR_ENGINE_DEVICE: 'cuda' });
    await expect(started).rejects.toThrow(/worker exited early/);
    await expect(started).rejects.toThrow(
      /needs the ONNX Runtime CUDA provider \(libonnxruntime_providers_cuda\.so/,
    );
  });
});
