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
    expect(lines.at(-1)).toBe('doctor: ok');
    expect(
      lines.some((l) => /^engine=onnxruntime device=cpu precision=fp32: usable, parity pass/.test(l)),
    ).toBe(true);
  });

  it('prints the report as JSON and exits 0 when every usable engine passes', async () => {
    const lines: string[] = [];
    const code = await runDoctor(['--json', '--skip-speed'], (line) => lines.push(line));
    const report = JSON.parse(lines.join('\n')) as {
      ok: boolean;
      engines: { usable: boolean }[];
      libraries: object;
    };
    expect(code).toBe(report.ok ? 0 : 1);
    expect(report.engines.some((e) => e.usable)).toBe(true);
    expect(Object.keys(report.libraries)).toContain('libcudnn.so.9');
  });
});
