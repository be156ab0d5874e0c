/** The public API v1 and the internal edge <-> worker contracts: zod schemas with inferred types. */
export * from './accounts.ts';
export * from './billing.ts';
export * from './controls.ts';
export * from './defaults.ts';
export * from './errors.ts';
export * from './events.ts';
export * from './generation.ts';
export * from './generation-request.ts';
export * from './image-modes.ts';
export * from './image-source.ts';
export * from './job.ts';
export * from './models.ts';
export * from './preprocess.ts';
export * from './pricing.ts';
export * from './pull.ts';
export * from './sizes.ts';
export * from './webhooks.ts';
