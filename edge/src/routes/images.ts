import { Hono } from 'hono';
import { authOf } from '../auth/middleware.ts';
import type { AppEnv } from '../env.ts';
import { generationStub } from '../generations/stub.ts';
import { imageSigningSecret, signedUrlProblem } from '../images/signed-url.ts';
import { ApiError } from '../lib/errors.ts';

/** Keys look like `outputs/gen_x/0.png`: no traversal, no empty segments. */
const KEY = /^(inputs|controls|outputs)\/(gen_[A-Za-z0-9]{8,64})\/[A-Za-z0-9_.-]{1,64}$/;

/** True when the caller's account owns the stored image (its R2 owner, else its generation's). */
async function ownedBy(
  env: AppEnv['Bindings'],
  object: R2ObjectBody,
  generationId: string,
  accountId: string,
): Promise<boolean> {
  const owner = object.customMetadata?.['account'];
  if (owner) return owner === accountId;
  if (generationId.startsWith('gen_pre')) return false;
  return (await generationStub(env, generationId).get(accountId)) !== null;
}

/**
 * `GET /v1/images/:key`: stored images are private. They are served for a signed, unexpired URL
 * (`?exp=&sig=`, as generation objects hand out) or to the owning account's credentials; anything else is
 * refused (403 for a bad or expired signature, 401 without credentials, 404 for another account's image).
 */
export const imagesRoute = new Hono<AppEnv>().get('/v1/images/*', async (c) => {
  // Keys hold no escapes, so the raw path is compared as it is: `%ZZ` or `%2e%2e` is simply not a key.
  const key = new URL(c.req.url).pathname.slice('/v1/images/'.length);
  const match = KEY.exec(key);
  if (!match) throw new ApiError('not_found', 'No such image');
  const sig = c.req.query('sig');
  const exp = c.req.query('exp');
  const signed = sig !== undefined || exp !== undefined;
  if (signed) {
    const problem = await signedUrlProblem(imageSigningSecret(c.env), key, exp, sig);
    if (problem) throw new ApiError('forbidden', `Image URL refused: ${problem}`);
  }
  const object = await c.env.IMAGES.get(key);
  if (!object) throw new ApiError('not_found', 'No such image');
  if (!signed && !(await ownedBy(c.env, object, match[2]!, authOf(c).accountId))) {
    await object.body.cancel();
    throw new ApiError('not_found', 'No such image');
  }
  const headers = new Headers();
  object.writeHttpMetadata(headers);
  headers.set('etag', object.httpEtag);
  // Private caches only, and never past the URL's expiry.
  const maxAge = signed ? Math.max(0, Number(exp) - Math.floor(Date.now() / 1000)) : 0;
  headers.set('cache-control', `private, max-age=${Math.min(maxAge, 86_400)}`);
  headers.set('x-content-type-options', 'nosniff');
  headers.set('content-security-policy', "default-src 'none'; sandbox");
  return new Response(object.body, { headers });
});
