import { ApiError } from './errors.ts';
import { parseJsonText } from './schema.ts';

/** Largest JSON or multipart body the API reads. */
export const MAX_BODY_BYTES = 45 * 1024 * 1024;

/** A parsed request body: the JSON document and any uploaded files by part name. */
export interface ParsedBody {
  json: unknown;
  attachments: Map<string, Uint8Array>;
}

/**
 * Reads `application/json`, or `multipart/form-data` with the JSON in a `request` part and files in other
 * parts (referenced from the JSON as `attachment:NAME`). Anything else is a 415.
 */
export async function readBody(request: Request): Promise<ParsedBody> {
  const length = Number(request.headers.get('content-length') ?? 0);
  if (length > MAX_BODY_BYTES)
    throw new ApiError('payload_too_large', `Body is over ${MAX_BODY_BYTES} bytes`);
  const type = (request.headers.get('content-type') ?? '').toLowerCase();
  if (type.startsWith('application/json')) {
    return { json: parseJsonText(await request.text()), attachments: new Map() };
  }
  if (type.startsWith('multipart/form-data')) {
    let form: FormData;
    try {
      form = await request.formData();
    } catch {
      throw new ApiError('invalid_request', 'The multipart body could not be parsed');
    }
    const attachments = new Map<string, Uint8Array>();
    let json: unknown;
    for (const [name, value] of form.entries()) {
      if (typeof value === 'string') {
        if (name !== 'request') continue;
        try {
          json = JSON.parse(value);
        } catch {
          throw new ApiError('invalid_json', "The multipart 'request' part is not valid JSON", [
            { path: 'request', message: 'not valid JSON' },
          ]);
        }
      } else {
        attachments.set(name, new Uint8Array(await value.arrayBuffer()));
      }
    }
    if (json === undefined) {
      throw new ApiError('invalid_request', "Multipart bodies need a 'request' part holding the JSON", [
        { path: 'request', message: 'missing' },
      ]);
    }
    return { json, attachments };
  }
  throw new ApiError('unsupported_media_type', 'Send application/json or multipart/form-data');
}
