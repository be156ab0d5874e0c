/** `@contour/shared`: contracts and signing; image code lives at `@contour/shared/preprocess`. */
export * from './contracts/index.ts';
export * from './signing/index.ts';
