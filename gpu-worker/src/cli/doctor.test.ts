import { describe, expect, it } from 'vitest';
import { systemProbe } from '../engine/select.ts';
import { formatDoctorReport, runDoctor, runDoctorChecks } from './doctor.ts';

describe('contour-worker doctor', () => {
  it('runs the original-code parity fixture on every usable engine and says why the others cannot run', async () => {
    // This machine, except that it claims a Hopper GPU and tfjs-node-gpu: doctor must refuse that pairing.
    const probe = {
      ...systemProbe,
      gpus: () => ['9.0'],
      hasPackage: (name: string) => name === '@tensorflow/tfjs-node-gpu' || systemProbe.hasPackage(name),
      hasOrtCudaProvider: () => false,
    };
    const report = await runDoctorChecks({ speedSteps: 0, probe });
    const byName = new Map(report.engines.map((e) => [`${e.engine}/${e.device}/${e.precision}`, e]));
    expect(byName.get('tfjs/cuda/fp32')).toMatchObject({ usable: false });
    expect(byName.get('tfjs/cuda/fp32')?.reason).toMatch(/compute capability 9\.0/);
    expect(byName.get('onnxruntime/cuda/fp16')?.reason).toMatch(/CUDA provider is not installed/);
    for (const name of ['tfjs/wasm/fp32', 'onnxruntime/cpu/fp32']) {
      const engine = byName.get(name);
      expect(engine?.usable, name).toBe(true);
      expect(engine?.parity?.pass, name).toBe(true);
      expect(engine?.parity?.worstRelError, name).toBeLessThan(1e-4);
    }
    expect(report.ok).toBe(true);
    const lines = formatDoctorReport(report);
    expect(lines.at(-1)).toMatch(/^verdict: OK: use CONTOUR_ENGINE=onnxruntime CONTOUR_ENGINE_DEVICE=cpu/);
    expect(
      lines.some((l) => /^engine=onnxruntime device=cpu precision=fp32: usable, parity pass/.test(l)),
    ).toBe(true);
  });

  it('prints the JSON operators read: gpu, engines with parity and steps/s at 512, the recommended engine, a verdict', async () => {
    const lines: string[] = [];
    const code = await runDoctor(['--json', '--steps', '1'], (line) => lines.push(line));
    const report = JSON.parse(lines.join('\n')) as {
      gpu: { available: boolean; libraries: Record<string, boolean> };
      engines: {
        name: string;
        device: string;
        precision: string;
        usable: boolean;
        reason: string | null;
        parity_max_rel_err: number | null;
        steps_per_s_512: number | null;
      }[];
      recommended_engine: { name: string; device: string; precision: string } | null;
      verdict: string;
    };
    expect(code).toBe(0);
    expect(report.gpu.available).toBe(false);
    expect(Object.keys(report.gpu.libraries)).toContain('libcudnn.so.9');
    const usable = report.engines.filter((e) => e.usable);
    expect(usable.map((e) => `${e.name}/${e.device}`)).toEqual(['onnxruntime/cpu', 'tfjs/wasm']);
    for (const e of usable) {
      expect(e.parity_max_rel_err).toBeLessThan(1e-4);
      expect(e.steps_per_s_512).toBeGreaterThan(0);
      expect(e.reason).toBeNull();
    }
    for (const e of report.engines.filter((x) => !x.usable)) expect(e.reason).toMatch(/.+/);
    // The fastest engine that passed parity: ONNX Runtime on this CPU.
    expect(report.recommended_engine).toEqual({ name: 'onnxruntime', device: 'cpu', precision: 'fp32' });
    expect(report.verdict).toMatch(/^OK: use CONTOUR_ENGINE=onnxruntime/);
  }, 180_000);
});
