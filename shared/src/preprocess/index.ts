export { type CannyThresholds, canny } from './canny.ts';
export {
  assertDecodeWork,
  type DecodeWork,
  decodeWork,
  MAX_JPEG_SCANS,
} from './codecs/cost.ts';
export { decodeJpeg, encodeJpeg, readJpegHeader } from './codecs/jpeg.ts';
export {
  decodePng,
  decodePngAsync,
  type EncodePngOptions,
  encodePng,
  encodePngAsync,
  readPngHeader,
} from './codecs/png.ts';
export { decodeWebp, encodeWebp, registerWebpCodec, type WebpModules } from './codecs/webp.ts';
export {
  invert,
  lineart,
  PREPROCESSORS,
  type PreprocessOptions,
  type PreprocessorName,
  preprocess,
  scribble,
} from './control.ts';
export { hwc3, toControlMap } from './convert.ts';
export { type CvImage, type CvInterpolation, type CvPixels, cvResize, cvResizeBy } from './cv-resize.ts';
export {
  type DecodeOptions,
  decodeImage,
  type ImageFormat,
  type ImageHeader,
  MAX_DECODE_WORK,
  MAX_IMAGE_BYTES,
  MAX_IMAGE_PIXELS,
  readImageHeader,
} from './decode.ts';
export { IMAGE_ERROR_CODES, ImageError, type ImageErrorCode } from './errors.ts';
export type { ControlMap, GrayImage, Image8, RgbImage } from './image.ts';
export { contentShuffle, inpaintPreview, maskRepaint, NumpyRandom, tileResample } from './model-free.ts';
export { applyOrientation, type Orientation, readExifOrientation } from './orientation.ts';
export { resizeImage, resizeImageTo, resizeTarget } from './resize.ts';
