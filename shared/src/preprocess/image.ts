/** An 8-bit interleaved image, row-major, `channels` samples per pixel (HWC layout). */
export interface Image8<C extends number = number> {
  width: number;
  height: number;
  channels: C;
  data: Uint8Array;
}

/** A decoded colour image: RGB or RGBA, 8 bits per sample. */
export type RgbImage = Image8<3 | 4>;

/** A single-channel 8-bit image (edge maps, masks). */
export type GrayImage = Image8<1>;

/** A control map as the model consumes it: float RGB in [0, 1], HWC. */
export interface ControlMap {
  width: number;
  height: number;
  channels: 3;
  data: Float32Array;
}
