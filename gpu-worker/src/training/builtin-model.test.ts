import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import type { ControlNetModel } from '../models/controlnet.ts';
import { ClipTokenizer } from '../text/tokenizer.ts';
import { loadTrainedBuiltinModel, type TrainedBuiltinModel } from './builtin-model.ts';
import { evaluateFidelity, heldOutConditions } from './evaluate.ts';
import { PromptEmbeddings } from './text-encoder.ts';

// The CI slice of `cli.ts evaluate`: the committed model on the first 8 held-out conditions, held to the issue's
// targets. On all 64 it scores control F1 0.769 (base alone 0.158, chance 0.124) and prompt fidelity 1.0; on these 8,
// 0.759 and 0.169 (docs/TRAINING.md). The run is deterministic on wasm, so the floors are the targets themselves.
const CONTROL_F1_FLOOR = 0.7;
const PROMPT_FIDELITY_FLOOR = 0.8;
describe('the trained built-in model (committed weights)', () => {
  let model: TrainedBuiltinModel;
  let canny: ControlNetModel;
  let embeddings: PromptEmbeddings;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    model = await loadTrainedBuiltinModel();
    canny = (await model.loadHead('canny'))!;
    embeddings = new PromptEmbeddings(model.clip, await ClipTokenizer.fromOpenAIVocab());
  });

  afterAll(() => {
    embeddings.dispose();
    canny.dispose();
    model.unet.dispose();
    model.vae.dispose();
    model.clip.dispose();
  });

  it('loads from the diffusers folders with only a canny head', async () => {
    expect(model.manifest.imageSize).toBe(64);
    expect(canny.config.model_channels).toBe(model.unet.config.model_channels);
    expect(await model.loadHead('depth')).toBeUndefined();
  });

  it('gives untrained control types a head that leaves the base unchanged', async () => {
    const head = model.untrainedHead();
    const [condition] = heldOutConditions(1, model.manifest.imageSize);
    const models = { unet: model.unet, vaeDecoder: model.vae };
    const withHead = await evaluateFidelity({ models, embeddings, conditions: [condition!], net: head });
    const without = await evaluateFidelity({ models, embeddings, conditions: [condition!] });
    expect(Buffer.from(withHead.images[0]!).equals(Buffer.from(without.images[0]!))).toBe(true);
    head.dispose();
  });

  it('follows the control map with its ControlNet and not without, and keeps the prompt colours', async () => {
    const conditions = heldOutConditions(8, model.manifest.imageSize);
    const models = { unet: model.unet, vaeDecoder: model.vae };
    const controlled = await evaluateFidelity({ models, embeddings, conditions, net: canny });
    const baseOnly = await evaluateFidelity({ models, embeddings, conditions });
    expect(controlled.controlF1).toBeGreaterThan(CONTROL_F1_FLOOR);
    expect(baseOnly.controlF1).toBeLessThan(0.3);
    expect(controlled.controlF1 - baseOnly.controlF1).toBeGreaterThan(0.2);
    expect(controlled.promptFidelity).toBeGreaterThanOrEqual(PROMPT_FIDELITY_FLOOR);
  });
});
