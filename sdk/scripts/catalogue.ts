// Writes sdk/src/preprocess/catalogue.gen.json from @contour/shared's preprocessor table (zod schemas turned
// into plain data, so the SDK ships the catalogue without zod): `npm run catalogue`. A test fails when stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CONTROL_TYPE_PREPROCESSORS,
  DEFAULT_DETECT_RESOLUTION,
  MAX_DETECT_RESOLUTION,
  MIN_DETECT_RESOLUTION,
  PREPROCESSOR_NAMES,
  PREPROCESSORS,
} from '@contour/shared/contracts';
import { z } from 'zod';

/** Path of the generated catalogue. */
export const CATALOGUE_PATH = fileURLToPath(new URL('../src/preprocess/catalogue.gen.json', import.meta.url));

type JsonSchema = {
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  properties?: Record<string, JsonSchema>;
};

/** One params schema as `{ key: { type, minimum, maximum, default, description } }` (its JSON Schema properties). */
function paramSpecs(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const body = json.$ref ? json.$defs?.[json.$ref.split('/').pop() ?? ''] : json;
  const specs: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(body?.properties ?? {})) {
    const { type, minimum, maximum, default: fallback, description } = spec as Record<string, unknown>;
    specs[key] = { type, minimum, maximum, default: fallback, description };
  }
  return specs;
}

/** The catalogue file's text (stable key order, trailing newline). */
export function catalogueJson(): string {
  const catalogue = {
    detectResolution: {
      default: DEFAULT_DETECT_RESOLUTION,
      minimum: MIN_DETECT_RESOLUTION,
      maximum: MAX_DETECT_RESOLUTION,
    },
    preprocessors: Object.fromEntries(
      PREPROCESSOR_NAMES.map((name) => {
        const info = PREPROCESSORS[name];
        return [
          name,
          {
            controlType: info.controlType,
            stage: info.stage,
            description: info.description,
            weights: info.weights,
            params: paramSpecs(info.params),
          },
        ];
      }),
    ),
    controlTypes: CONTROL_TYPE_PREPROCESSORS,
  };
  return `${JSON.stringify(catalogue, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(CATALOGUE_PATH, catalogueJson());
  console.log(`wrote ${CATALOGUE_PATH}`);
}
