import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument, serializeOpenApiDocument } from './index.ts';

describe('OpenAPI document', () => {
  it('is committed up to date (run `npm run openapi` after changing a schema)', () => {
    const committed = readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8');
    expect(
      committed === serializeOpenApiDocument(),
      'shared/openapi.json is stale: run `npm run openapi`',
    ).toBe(true);
  });

  it('describes the generation request with its rules and defaults', () => {
    const doc = buildOpenApiDocument();
    const schemas = doc.components?.schemas as Record<
      string,
      { properties?: Record<string, Record<string, unknown>>; required?: string[] }
    >;
    const request = schemas['GenerationRequest']!;
    expect(request.required).toEqual(['prompt', 'controls']);
    expect(request.properties!['steps']).toMatchObject({ minimum: 1, maximum: 100, default: 20 });
    expect(request.properties!['controls']).toMatchObject({ minItems: 1, maxItems: 4 });
    expect(Object.keys(doc.paths ?? {})).toEqual(
      expect.arrayContaining([
        '/v1/generations',
        '/v1/generations/{id}',
        '/v1/generations/{id}/events',
        '/v1/preprocess',
      ]),
    );
  });
});
