/**
 * An image the SDK uploads for you: a string is sent as is (https URL, `data:` URL, base64 or
 * `attachment:NAME`); bytes (`Blob`/`File`, `ArrayBuffer`, `Uint8Array`) go as multipart file parts.
 */
export type ImageInput = string | Blob | ArrayBuffer | ArrayBufferView;

/** Replaces the image fields of `T` (`image`, `mask`) with {@link ImageInput}. */
export type WithImageInputs<T> = T extends unknown
  ? { [K in keyof T]: K extends 'image' | 'mask' ? ImageInput : T[K] }
  : never;

function toBlob(value: Exclude<ImageInput, string>): Blob {
  if (value instanceof Blob) return value;
  const bytes =
    value instanceof ArrayBuffer
      ? new Uint8Array(value)
      : new Uint8Array(value.buffer as ArrayBuffer, value.byteOffset, value.byteLength);
  return new Blob([bytes]);
}

/** A JSON body, or a multipart body whose `request` part is the JSON and whose files it references. */
export type EncodedBody = { kind: 'json'; body: unknown } | { kind: 'multipart'; body: FormData };

/**
 * Moves every non-string image of `objects` (the request, or its control units) into file parts named
 * `NAME` and references them as `attachment:NAME`, the edge's multipart convention. Without files, the
 * body stays JSON.
 */
export function encodeImages<T extends object>(
  request: T,
  units: (copy: T) => Record<string, unknown>[],
  prefix: string,
  topLevelFields: readonly string[] = [],
): EncodedBody {
  const copy = structuredCloneShallow(request);
  const files: [name: string, blob: Blob][] = [];
  // Request-level images (img2img's init_image, inpaint's mask) go as parts named after their field.
  const top = copy as Record<string, unknown>;
  for (const field of topLevelFields) {
    const value = top[field];
    if (value === undefined || typeof value === 'string') continue;
    files.push([field, toBlob(value as Exclude<ImageInput, string>)]);
    top[field] = `attachment:${field}`;
  }
  units(copy).forEach((unit, index) => {
    for (const field of ['image', 'mask']) {
      const value = unit[field];
      if (value === undefined || typeof value === 'string') continue;
      const name = `${prefix}${index}_${field}`;
      files.push([name, toBlob(value as Exclude<ImageInput, string>)]);
      unit[field] = `attachment:${name}`;
    }
  });
  if (files.length === 0) return { kind: 'json', body: copy };
  const form = new FormData();
  form.set('request', JSON.stringify(copy));
  for (const [name, blob] of files) form.set(name, blob, name);
  return { kind: 'multipart', body: form };
}

/** Copies the request and its `controls` units so encoding never mutates the caller's object. */
function structuredCloneShallow<T extends object>(value: T): T {
  const copy = { ...value } as Record<string, unknown>;
  if (Array.isArray(copy['controls'])) {
    copy['controls'] = (copy['controls'] as object[]).map((unit) => ({ ...unit }));
  }
  return copy as T;
}
