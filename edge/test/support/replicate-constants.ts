/** Token the edge tests configure for the fake Replicate API. */
export const FAKE_REPLICATE_TOKEN = 'r8_test_token';
/** Webhook signing secret the edge tests configure (Standard Webhooks: `whsec_` + base64 key). */
export const FAKE_REPLICATE_WEBHOOK_SECRET = `whsec_${btoa('contour-test-webhook-key-0123456')}`;
