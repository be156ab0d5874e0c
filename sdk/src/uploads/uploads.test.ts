import { describe, expect, it } from 'vitest';
import { encodeImages } from './uploads.ts';

describe('encodeImages', () => {
  it('keeps string images as JSON', () => {
    const request = { prompt: 'p', controls: [{ type: 'canny', image: 'https://x.test/a.png' }] };
    const encoded = encodeImages(request, (copy) => copy.controls, 'control_');
    expect(encoded).toEqual({ kind: 'json', body: request });
  });

  it('moves bytes and blobs into named file parts referenced as attachment:NAME, without mutating the input', async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const request = {
      prompt: 'p',
      controls: [
        { type: 'canny', image: bytes },
        { type: 'inpaint', image: 'data:image/png;base64,AAAA', mask: new Blob([new Uint8Array([9])]) },
      ],
    };
    const encoded = encodeImages(request, (copy) => copy.controls as Record<string, unknown>[], 'control_');
    expect(encoded.kind).toBe('multipart');
    const form = encoded.body as FormData;
    expect(JSON.parse(form.get('request') as string).controls).toEqual([
      { type: 'canny', image: 'attachment:control_0_image' },
      { type: 'inpaint', image: 'data:image/png;base64,AAAA', mask: 'attachment:control_1_mask' },
    ]);
    expect(new Uint8Array(await (form.get('control_0_image') as Blob).arrayBuffer())).toEqual(bytes);
    expect((form.get('control_1_mask') as Blob).size).toBe(1);
    expect(request.controls[0]!.image).toBe(bytes);
  });

  it('moves request-level init_image and mask bytes into parts named after the field', async () => {
    const init = new Uint8Array([4, 5]);
    const request = { prompt: 'p', init_image: init, mask: 'https://x.test/m.png', controls: [] };
    const encoded = encodeImages(request, (copy) => copy.controls, 'control_', ['init_image', 'mask']);
    expect(encoded.kind).toBe('multipart');
    const form = encoded.body as FormData;
    expect(JSON.parse(form.get('request') as string)).toMatchObject({
      init_image: 'attachment:init_image',
      mask: 'https://x.test/m.png',
    });
    expect(new Uint8Array(await (form.get('init_image') as Blob).arrayBuffer())).toEqual(init);
    expect(request.init_image).toBe(init);
  });
});
