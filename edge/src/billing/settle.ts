import { generationCost } from '@contour/shared/contracts';
import { accountStub, type ClientTokenLimits, type ReserveResult } from '../accounts/object.ts';
import type { Bindings } from '../env.ts';
import type { GenerationState } from '../generations/state.ts';

/** The work a finished generation actually did, priced with the published function (never above the hold). */
export function actualWork(state: GenerationState) {
  const work = {
    width: state.width,
    height: state.height,
    steps: state.steps,
    num_images: state.outputs.length > 0 ? state.outputs.length : state.num_images,
    control_units: state.job.controls.length,
    // `steps` is already what the worker ran (int(steps * strength) for image modes): price those steps plus
    // the encoder pass, without scaling by the strength a second time.
    strength: state.job.init_image ? 1 : undefined,
  };
  return { ...work, credits: Math.min(state.credits, generationCost(work)) };
}

/** Holds the generation's price on its account. */
export async function reserveCredits(
  env: Pick<Bindings, 'ACCOUNTS'>,
  state: GenerationState,
  clientToken: ClientTokenLimits | null,
): Promise<ReserveResult> {
  const billing = state.billing;
  if (!billing) return { ok: true, available: 0 };
  return accountStub(env, billing.account_id).reserve(billing.account_id, {
    generation_id: state.id,
    amount: state.credits,
    key_id: billing.key_id,
    client_token: clientToken,
  });
}

/**
 * Settles a terminal generation's hold: succeeded -> capture the actual cost, anything else (failed,
 * canceled, timed out) -> release. Idempotent on the account's side. Returns the credits charged.
 */
export async function settleCredits(
  env: Pick<Bindings, 'ACCOUNTS'>,
  state: GenerationState,
): Promise<number> {
  const billing = state.billing;
  if (!billing) return 0;
  const account = accountStub(env, billing.account_id);
  if (state.status === 'succeeded') {
    const result = await account.capture(billing.account_id, state.id, actualWork(state));
    return result.charged;
  }
  await account.release(
    billing.account_id,
    state.id,
    state.status === 'failed' ? (state.error?.code ?? 'failed') : state.status,
  );
  return 0;
}
