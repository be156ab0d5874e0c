/** Image filters of the OpenPose post-processing, bit-exact to the library calls they reproduce. */

/** scipy.ndimage's Gaussian kernel for sigma 3 (truncate 4.0, radius 12), centre and one side (float64 values). */
const GAUSS3 = [
  0.1329845385507837, 0.12579798346031065, 0.1064856940272447, 0.08065919989878699, 0.054671578245654065,
  0.033159988420867426, 0.017997500190860553, 0.008740878047691292, 0.003798769940305483,
  0.0014773247784004072, 0.0005141076058219727, 0.00016009476589197758, 4.4611342772648797e-5,
];
const RADIUS = 12;

/** scipy's 'reflect' line extension (d c b a | a b c d | d c b a), as NI_ExtendLine writes it. */
function extendReflect(src: Float64Array, n: number, buf: Float64Array): void {
  buf.set(src.subarray(0, n), RADIUS);
  let before = RADIUS;
  let s = 0;
  let d = RADIUS - 1;
  while (before && s < n) {
    buf[d--] = src[s++]!;
    before--;
  }
  s = n - 1;
  while (before-- > 0) buf[d--] = src[s--]!;
  let after = RADIUS;
  s = n - 1;
  d = RADIUS + n;
  while (after && s >= 0) {
    buf[d++] = src[s--]!;
    after--;
  }
  s = 0;
  while (after-- > 0) buf[d++] = src[s++]!;
}

/** NI_Correlate1D's symmetric-kernel loop: x0 w0 + sum over j = r..1 of (x[-j] + x[+j]) w[j]. */
function correlateLine(buf: Float64Array, n: number, out: Float64Array): void {
  for (let i = 0; i < n; i++) {
    const c = i + RADIUS;
    let acc = buf[c]! * GAUSS3[0]!;
    for (let j = RADIUS; j >= 1; j--) acc += (buf[c - j]! + buf[c + j]!) * GAUSS3[j]!;
    out[i] = acc;
  }
}

/** Source index of each position of a reflect-extended line of length n (RADIUS extra on each side). */
function reflectIndices(n: number): Int32Array {
  const idx = Float64Array.from({ length: n }, (_, i) => i);
  const buf = new Float64Array(n + 2 * RADIUS);
  extendReflect(idx, n, buf);
  return Int32Array.from(buf);
}

/**
 * scipy.ndimage.gaussian_filter(x, sigma=3) of a float64 H x W map (mode 'reflect', truncate 4.0): axis 0, then 1.
 * Each output is summed in NI_Correlate1D's order; the column pass runs row-wise for speed (same arithmetic).
 */
export function gaussianFilterSigma3(x: Float64Array, h: number, w: number): Float64Array {
  const tmp = new Float64Array(h * w);
  const rows = reflectIndices(h);
  for (let r = 0; r < h; r++) {
    const o = r * w;
    const c0 = rows[r + RADIUS]! * w;
    for (let col = 0; col < w; col++) tmp[o + col] = x[c0 + col]! * GAUSS3[0]!;
    for (let j = RADIUS; j >= 1; j--) {
      const a = rows[r + RADIUS - j]! * w;
      const b = rows[r + RADIUS + j]! * w;
      const k = GAUSS3[j]!;
      for (let col = 0; col < w; col++) tmp[o + col] = tmp[o + col]! + (x[a + col]! + x[b + col]!) * k;
    }
  }
  const out = new Float64Array(h * w);
  const line = new Float64Array(w);
  const buf = new Float64Array(w + 2 * RADIUS);
  const res = new Float64Array(w);
  for (let r = 0; r < h; r++) {
    line.set(tmp.subarray(r * w, r * w + w));
    extendReflect(line, w, buf);
    correlateLine(buf, w, res);
    out.set(res, r * w);
  }
  return out;
}

/**
 * cv2.GaussianBlur(img, (0, 0), 0.8) of an 8-bit image: OpenCV's bit-exact fixed-point path (7 taps, kernel
 * [0, 6, 58, 128, 58, 6, 0] / 256 from its softdouble Gaussian, rows then columns in exact integer arithmetic,
 * result rounded half up), BORDER_REFLECT_101.
 */
export function gaussianBlurSigma08(src: Uint8Array, h: number, w: number, c: number): Uint8Array {
  const K = [0, 6, 58, 128, 58, 6, 0];
  const r = 3;
  const reflect101 = (i: number, n: number) => {
    if (n === 1) return 0;
    let j = i;
    while (j < 0 || j >= n) j = j < 0 ? -j : 2 * n - 2 - j;
    return j;
  };
  const rows = new Uint32Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < 7; k++) acc += K[k]! * src[(y * w + reflect101(x + k - r, w)) * c + ch]!;
        rows[(y * w + x) * c + ch] = acc;
      }
    }
  }
  const out = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < 7; k++) acc += K[k]! * rows[(reflect101(y + k - r, h) * w + x) * c + ch]!;
        out[(y * w + x) * c + ch] = Math.min(255, Math.floor((acc + 32768) / 65536));
      }
    }
  }
  return out;
}

/**
 * F.interpolate(x, (outH, outW), mode='bilinear', align_corners=True) of a C x H x W float32 map, as PyTorch's CPU
 * kernel computes it in float32 (face.py resizes the face heatmaps back to the crop this way).
 */
export function resizeBilinearAlignCorners(
  x: Float32Array,
  c: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Float32Array {
  const f = Math.fround;
  const sh = outH > 1 ? f((h - 1) / (outH - 1)) : 0;
  const sw = outW > 1 ? f((w - 1) / (outW - 1)) : 0;
  const out = new Float32Array(c * outH * outW);
  for (let oy = 0; oy < outH; oy++) {
    const hr = f(sh * oy);
    const h1 = Math.trunc(hr);
    const h1p = h1 < h - 1 ? 1 : 0;
    const h1l = f(hr - h1);
    const h0l = f(1 - h1l);
    for (let ox = 0; ox < outW; ox++) {
      const wr = f(sw * ox);
      const w1 = Math.trunc(wr);
      const w1p = w1 < w - 1 ? 1 : 0;
      const w1l = f(wr - w1);
      const w0l = f(1 - w1l);
      for (let ch = 0; ch < c; ch++) {
        const base = ch * h * w;
        const a = x[base + h1 * w + w1]!;
        const b = x[base + h1 * w + w1 + w1p]!;
        const cc = x[base + (h1 + h1p) * w + w1]!;
        const d = x[base + (h1 + h1p) * w + w1 + w1p]!;
        out[ch * outH * outW + oy * outW + ox] = f(
          f(h0l * f(f(w0l * a) + f(w1l * b))) + f(h1l * f(f(w0l * cc) + f(w1l * d))),
        );
      }
    }
  }
  return out;
}
