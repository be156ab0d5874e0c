import { readFile } from 'node:fs/promises';
import * as shared from '@contour/shared/contracts';
import { describe, expect, it } from 'vitest';
import { CATALOGUE_PATH, catalogueJson } from '../../scripts/catalogue.ts';
import {
  CONTROL_TYPE_PREPROCESSORS,
  DEFAULT_DETECT_RESOLUTION,
  defaultPreprocessor,
  isNetworkPreprocessor,
  isPreprocessorName,
  PREPROCESSOR_NAMES,
  PREPROCESSORS,
  preprocessorsFor,
} from './catalogue.ts';

describe('preprocessor catalogue', () => {
  it('catalogue.gen.json is what the shared contracts make now (run `npm run catalogue`)', async () => {
    expect(await readFile(CATALOGUE_PATH, 'utf8')).toBe(catalogueJson());
  });

  it('has every preprocessor of the API, with its control type, stage and weights', () => {
    expect(PREPROCESSOR_NAMES).toEqual(shared.PREPROCESSOR_NAMES);
    for (const name of shared.PREPROCESSOR_NAMES) {
      const info = shared.PREPROCESSORS[name];
      expect(PREPROCESSORS[name]).toMatchObject({
        controlType: info.controlType,
        stage: info.stage,
        weights: info.weights,
      });
      expect(isNetworkPreprocessor(name)).toBe(shared.isNetworkPreprocessor(name));
    }
    for (const type of shared.CONTROL_TYPES) {
      expect(preprocessorsFor(type)).toEqual(shared.CONTROL_TYPE_PREPROCESSORS[type]);
      expect(defaultPreprocessor(type)).toBe(shared.defaultPreprocessor(type));
    }
    expect(CONTROL_TYPE_PREPROCESSORS.openpose).toEqual([
      'openpose',
      'openpose_hand',
      'openpose_face',
      'openpose_full',
    ]);
  });

  it('describes params with the bounds and defaults the API applies', () => {
    expect(PREPROCESSORS.canny.params).toEqual({
      low: { type: 'integer', minimum: 1, maximum: 255, default: 100 },
      high: { type: 'integer', minimum: 1, maximum: 255, default: 200 },
    });
    expect(PREPROCESSORS.depth_midas.params['detect_resolution']).toMatchObject({
      type: 'integer',
      minimum: 64,
      maximum: 2048,
      default: DEFAULT_DETECT_RESOLUTION,
    });
    expect(Object.keys(PREPROCESSORS.mlsd.params)).toEqual([
      'detect_resolution',
      'value_threshold',
      'distance_threshold',
    ]);
    // Every network preprocessor takes detect_resolution; no edge one does.
    for (const name of PREPROCESSOR_NAMES) {
      expect('detect_resolution' in PREPROCESSORS[name].params).toBe(isNetworkPreprocessor(name));
    }
  });

  it('tells names from other strings', () => {
    expect(isPreprocessorName('openpose_full')).toBe(true);
    expect(isPreprocessorName('toString')).toBe(false);
    expect(isPreprocessorName('depth')).toBe(false);
    expect(preprocessorsFor('ip2p')).toEqual([]);
    expect(defaultPreprocessor('ip2p')).toBeUndefined();
  });
});
