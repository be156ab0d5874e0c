import { env } from 'cloudflare:workers';
import type { Generation, PreprocessResult } from '@contour/shared/contracts';
import { describe, expect, it } from 'vitest';
import { imageSignature, imageSigningSecret } from '../src/images/signed-url.ts';
import { callEdge, createTestAccount, jsonPost, withKey } from './support/accounts.ts';
import { syntheticPngDataUrl } from './support/images.ts';

const image = syntheticPngDataUrl(64, 64);
const secret = imageSigningSecret(env);
const codeOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string } }).error.code;

async function finishedGeneration(apiKey: string): Promise<Generation> {
  const created = await callEdge(
    '/v1/generations',
    withKey(
      apiKey,
      jsonPost({ prompt: 'x', controls: [{ type: 'canny', image }], steps: 1, width: 256, height: 256 }),
    ),
  );
  expect(created.status).toBe(202);
  const { id } = (await created.json()) as Generation;
  const until = Date.now() + 20_000;
  for (;;) {
    const generation = (await (
      await callEdge(`/v1/generations/${id}`, withKey(apiKey))
    ).json()) as Generation;
    if (generation.status === 'succeeded') return generation;
    if (Date.now() > until) throw new Error(`generation ${id} is still ${generation.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('stored images are private', () => {
  it('serves outputs, control maps and inputs only to the owner or through a valid signed URL', async () => {
    const owner = await createTestAccount();
    const other = await createTestAccount();
    const generation = await finishedGeneration(owner.apiKey);
    const signedUrls = [generation.outputs[0]!.url, generation.control_maps[0]!.url];
    for (const signed of signedUrls) {
      const url = new URL(signed);
      expect(url.searchParams.get('exp')).toMatch(/^\d+$/);
      expect(url.searchParams.get('sig')).toBeTruthy();
      const key = url.pathname;
      // Signed: no credentials needed, until it expires.
      const viaSignature = await callEdge(`${key}${url.search}`);
      expect(viaSignature.status, signed).toBe(200);
      expect(viaSignature.headers.get('cache-control')).toMatch(/^private, max-age=\d+/);
      await viaSignature.arrayBuffer();
      // Unsigned and without credentials: refused.
      const bare = await callEdge(key);
      expect(bare.status).toBe(401);
      expect(await codeOf(bare)).toBe('unauthenticated');
      // The owner's key reads it; another account's key does not learn that it exists.
      const asOwner = await callEdge(key, withKey(owner.apiKey));
      expect(asOwner.status).toBe(200);
      await asOwner.arrayBuffer();
      const asOther = await callEdge(key, withKey(other.apiKey));
      expect(asOther.status).toBe(404);
      expect(await codeOf(asOther)).toBe('not_found');
      // A tampered, truncated, moved or missing signature is refused.
      const sig = url.searchParams.get('sig')!;
      const exp = url.searchParams.get('exp')!;
      const flipped = sig[0] === 'A' ? `B${sig.slice(1)}` : `A${sig.slice(1)}`;
      for (const query of [
        `?exp=${exp}&sig=${flipped}`,
        `?exp=${exp}&sig=${sig.slice(0, -2)}`,
        `?exp=${Number(exp) + 600}&sig=${sig}`,
        `?exp=${exp}`,
        `?sig=${sig}`,
        `?exp=${exp}&sig=`,
        `?exp=-1&sig=${sig}`,
        `?exp=1e99&sig=${sig}`,
      ]) {
        const response = await callEdge(`${key}${query}`);
        expect(response.status, query).toBe(403);
        expect(await codeOf(response)).toBe('forbidden');
      }
      // The same signature does not open another key.
      const otherKey = key.replace(/\/[^/]+$/, '/1.png');
      expect((await callEdge(`${otherKey}?exp=${exp}&sig=${sig}`)).status).toBe(403);
    }
    // Inputs are not listed in the resource, and are just as private.
    const inputKey = `/v1/images/inputs/${generation.id}/0.png`;
    expect((await callEdge(inputKey)).status).toBe(401);
    expect((await callEdge(inputKey, withKey(other.apiKey))).status).toBe(404);
    const input = await callEdge(inputKey, withKey(owner.apiKey));
    expect(input.status).toBe(200);
    await input.arrayBuffer();
  });

  it('a signed URL works until its expiry and is refused after it', async () => {
    const owner = await createTestAccount();
    const generation = await finishedGeneration(owner.apiKey);
    const path = new URL(generation.outputs[0]!.url).pathname;
    const key = path.slice('/v1/images/'.length);
    const now = Math.floor(Date.now() / 1000);
    const live = now + 5;
    const fresh = await callEdge(`${path}?exp=${live}&sig=${await imageSignature(secret, key, live)}`);
    expect(fresh.status).toBe(200);
    await fresh.arrayBuffer();
    const past = now - 1;
    const expired = await callEdge(`${path}?exp=${past}&sig=${await imageSignature(secret, key, past)}`);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as { error: { message: string } }).error.message).toContain('expired');
  });

  it('preprocess results are readable by their account and signed URL only', async () => {
    const owner = await createTestAccount();
    const other = await createTestAccount();
    const response = await callEdge(
      '/v1/preprocess',
      withKey(owner.apiKey, jsonPost({ type: 'canny', image })),
    );
    expect(response.status).toBe(200);
    const result = (await response.json()) as PreprocessResult;
    const url = new URL(result.url);
    const signed = await callEdge(`${url.pathname}${url.search}`);
    expect(signed.status).toBe(200);
    await signed.arrayBuffer();
    expect((await callEdge(url.pathname)).status).toBe(401);
    expect((await callEdge(url.pathname, withKey(other.apiKey))).status).toBe(404);
    const mine = await callEdge(url.pathname, withKey(owner.apiKey));
    expect(mine.status).toBe(200);
    await mine.arrayBuffer();
  });
});
