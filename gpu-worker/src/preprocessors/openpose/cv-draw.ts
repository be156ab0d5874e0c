/**
 * The OpenCV 4.x rasterisers the OpenPose drawing uses, bit-exact on 8-bit 3-channel images: ellipse2Poly,
 * fillConvexPoly (LINE_8, any shift), line (LINE_8, thickness 1 and 2+), and filled circle (LINE_8). Points and
 * the fixed-point arithmetic (XY_SHIFT 16) are integers kept in doubles (exact below 2^53).
 */

/** An 8-bit HWC canvas with 3 channels, drawn in place. */
export interface Canvas {
  data: Uint8Array;
  width: number;
  height: number;
}

/** An integer point. */
export type Point = readonly [number, number];

/** A colour as OpenCV takes it: up to 3 channel values, rounded and saturated like cv::saturate_cast<uchar>. */
export type Color = readonly [number, number, number];

const XY_SHIFT = 16;
const XY_ONE = 65536;

/** cvRound: round half to even (lrint under the default rounding mode). */
export function cvRound(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Arithmetic right shift of an int64 held in a double. */
function shr(v: number, bits: number): number {
  return Math.floor(v / 2 ** bits);
}

/** C integer division (truncates toward zero). */
function idiv(a: number, b: number): number {
  return Math.trunc(a / b);
}

function saturate(c: Color): [number, number, number] {
  return c.map((v) => Math.min(255, Math.max(0, cvRound(v)))) as [number, number, number];
}

function hline(img: Canvas, y: number, x1: number, x2: number, c: readonly number[]): void {
  let p = (y * img.width + x1) * 3;
  for (let x = x1; x <= x2; x++, p += 3) {
    img.data[p] = c[0]!;
    img.data[p + 1] = c[1]!;
    img.data[p + 2] = c[2]!;
  }
}

function putPixel(img: Canvas, x: number, y: number, c: readonly number[]): void {
  const p = (y * img.width + x) * 3;
  img.data[p] = c[0]!;
  img.data[p + 1] = c[1]!;
  img.data[p + 2] = c[2]!;
}

/** cv::clipLine on a (possibly fixed-point) size; returns the clipped points or undefined when outside. */
function clipLine(width: number, height: number, a: [number, number], b: [number, number]): boolean {
  const right = width - 1;
  const bottom = height - 1;
  if (width <= 0 || height <= 0) return false;
  let [x1, y1] = a;
  let [x2, y2] = b;
  let c1 = +(x1 < 0) + +(x1 > right) * 2 + +(y1 < 0) * 4 + +(y1 > bottom) * 8;
  let c2 = +(x2 < 0) + +(x2 > right) * 2 + +(y2 < 0) * 4 + +(y2 > bottom) * 8;
  if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
    if (c1 & 12) {
      const t = c1 < 8 ? 0 : bottom;
      x1 += idiv((t - y1) * (x2 - x1), y2 - y1);
      y1 = t;
      c1 = +(x1 < 0) + +(x1 > right) * 2;
    }
    if (c2 & 12) {
      const t = c2 < 8 ? 0 : bottom;
      x2 += idiv((t - y2) * (x2 - x1), y2 - y1);
      y2 = t;
      c2 = +(x2 < 0) + +(x2 > right) * 2;
    }
    if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
      if (c1) {
        const t = c1 === 1 ? 0 : right;
        y1 += idiv((t - x1) * (y2 - y1), x2 - x1);
        x1 = t;
        c1 = 0;
      }
      if (c2) {
        const t = c2 === 1 ? 0 : right;
        y2 += idiv((t - x2) * (y2 - y1), x2 - x1);
        x2 = t;
        c2 = 0;
      }
    }
  }
  a[0] = x1;
  a[1] = y1;
  b[0] = x2;
  b[1] = y2;
  return (c1 | c2) === 0;
}

/** cv::Line through LineIterator (8-connected, left to right), integer end points. */
function line8(img: Canvas, p1: Point, p2: Point, c: readonly number[]): void {
  const a: [number, number] = [p1[0], p1[1]];
  const b: [number, number] = [p2[0], p2[1]];
  const outside = (v: number, n: number) => v < 0 || v >= n;
  if (
    outside(a[0], img.width) ||
    outside(b[0], img.width) ||
    outside(a[1], img.height) ||
    outside(b[1], img.height)
  ) {
    if (!clipLine(img.width, img.height, a, b)) return;
  }
  let [x, y] = a;
  let dx = b[0] - a[0];
  let dy = b[1] - a[1];
  if (dx < 0) {
    dx = -dx;
    dy = -dy;
    [x, y] = b;
  }
  let sy = 1;
  if (dy < 0) {
    dy = -dy;
    sy = -1;
  }
  const vert = dy > dx;
  const major = vert ? dy : dx;
  const minor = vert ? dx : dy;
  let err = major - 2 * minor;
  for (let i = 0; i <= major; i++) {
    putPixel(img, x, y, c);
    const step = err < 0;
    err += -2 * minor + (step ? 2 * major : 0);
    if (vert) {
      y += sy;
      if (step) x += 1;
    } else {
      x += 1;
      if (step) y += sy;
    }
  }
}

/** cv::Line2: the fixed-point (XY_SHIFT) line fillConvexPoly draws polygon edges with when shift > 0. */
function line2(img: Canvas, p1: Point, p2: Point, c: readonly number[]): void {
  const a: [number, number] = [p1[0], p1[1]];
  const b: [number, number] = [p2[0], p2[1]];
  if (!clipLine(img.width * XY_ONE, img.height * XY_ONE, a, b)) return;
  let [x1, y1] = a;
  let [x2, y2] = b;
  const dx0 = x2 - x1;
  const dy0 = y2 - y1;
  const ax = Math.abs(dx0);
  const ay = Math.abs(dy0);
  let xStep: number;
  let yStep: number;
  let ecount: number;
  if (ax > ay) {
    let dy = dy0;
    if (dx0 < 0) {
      dy = -dy;
      [x1, x2] = [x2, x1];
      [y1, y2] = [y2, y1];
    }
    xStep = XY_ONE;
    yStep = idiv(dy * XY_ONE, ax | 1);
    ecount = shr(x2 - x1, XY_SHIFT);
  } else {
    let dx = dx0;
    if (dy0 < 0) {
      dx = -dx;
      [x1, x2] = [x2, x1];
      [y1, y2] = [y2, y1];
    }
    xStep = idiv(dx * XY_ONE, ay | 1);
    yStep = XY_ONE;
    ecount = shr(y2 - y1, XY_SHIFT);
  }
  x1 += XY_ONE >> 1;
  y1 += XY_ONE >> 1;
  const put = (x: number, y: number) => {
    if (x >= 0 && x < img.width && y >= 0 && y < img.height) putPixel(img, x, y, c);
  };
  put(shr(x2 + (XY_ONE >> 1), XY_SHIFT), shr(y2 + (XY_ONE >> 1), XY_SHIFT));
  if (ax > ay) {
    x1 = shr(x1, XY_SHIFT);
    for (; ecount >= 0; ecount--) {
      put(x1, shr(y1, XY_SHIFT));
      x1++;
      y1 += yStep;
    }
  } else {
    y1 = shr(y1, XY_SHIFT);
    for (; ecount >= 0; ecount--) {
      put(shr(x1, XY_SHIFT), y1);
      x1 += xStep;
      y1++;
    }
  }
}

/** cv::FillConvexPoly (non-antialiased) with vertices in `shift`-bit fixed point. */
function fillConvexPolyRaw(img: Canvas, v: readonly Point[], c: readonly number[], shift: number): void {
  const npts = v.length;
  const delta = shift ? 2 ** (shift - 1) : 0;
  const half = XY_ONE >> 1;
  const up = 2 ** (XY_SHIFT - shift);
  let p0: [number, number] = [v[npts - 1]![0] * up, v[npts - 1]![1] * up];
  let xmin = v[0]![0];
  let xmax = xmin;
  let ymin = v[0]![1];
  let ymax = ymin;
  let imin = 0;
  for (let i = 0; i < npts; i++) {
    const [px, py] = v[i]!;
    if (py < ymin) {
      ymin = py;
      imin = i;
    }
    ymax = Math.max(ymax, py);
    xmax = Math.max(xmax, px);
    xmin = Math.min(xmin, px);
    const p: [number, number] = [px * up, py * up];
    if (shift === 0)
      line8(img, [shr(p0[0], XY_SHIFT), shr(p0[1], XY_SHIFT)], [shr(p[0], XY_SHIFT), shr(p[1], XY_SHIFT)], c);
    else line2(img, p0, p, c);
    p0 = p;
  }
  xmin = shr(xmin + delta, shift);
  xmax = shr(xmax + delta, shift);
  ymin = shr(ymin + delta, shift);
  ymax = shr(ymax + delta, shift);
  if (npts < 3 || xmax < 0 || ymax < 0 || xmin >= img.width || ymin >= img.height) return;
  ymax = Math.min(ymax, img.height - 1);
  const edge = [
    { idx: imin, di: 1, x: -XY_ONE, dx: 0, ye: ymin },
    { idx: imin, di: npts - 1, x: -XY_ONE, dx: 0, ye: ymin },
  ];
  let edges = npts;
  let y = ymin;
  do {
    for (const e of edge) {
      if (y >= e.ye) {
        let idx0 = e.idx;
        let idx = idx0 + e.di;
        if (idx >= npts) idx -= npts;
        for (; edges-- > 0; ) {
          const ty = shr(v[idx]![1] + delta, shift);
          if (ty > y) {
            const xs = v[idx0]![0] * up;
            const xe = v[idx]![0] * up;
            e.ye = ty;
            e.dx = idiv((xe - xs) * 2 + (ty - y), 2 * (ty - y));
            e.x = xs;
            e.idx = idx;
            break;
          }
          idx0 = idx;
          idx += e.di;
          if (idx >= npts) idx -= npts;
        }
      }
    }
    if (edges < 0) break;
    if (y >= 0) {
      const [l, r] = edge[0]!.x > edge[1]!.x ? [edge[1]!, edge[0]!] : [edge[0]!, edge[1]!];
      let xx1 = shr(l.x + half, XY_SHIFT);
      let xx2 = shr(r.x + half, XY_SHIFT);
      if (xx2 >= 0 && xx1 < img.width) {
        if (xx1 < 0) xx1 = 0;
        if (xx2 >= img.width) xx2 = img.width - 1;
        hline(img, y, xx1, xx2, c);
      }
    }
    edge[0]!.x += edge[0]!.dx;
    edge[1]!.x += edge[1]!.dx;
  } while (++y <= ymax);
}

/** cv2.fillConvexPoly(img, pts, color) with the default LINE_8 and shift 0. */
export function fillConvexPoly(img: Canvas, pts: readonly Point[], color: Color): void {
  if (pts.length === 0) return;
  fillConvexPolyRaw(img, pts, saturate(color), 0);
}

/** cv::Circle, the filled LINE_8 circle cv2.circle(..., thickness=-1) draws. */
function filledCircle(img: Canvas, cx: number, cy: number, radius: number, c: readonly number[]): void {
  const { width, height } = img;
  let err = 0;
  let dx = radius;
  let dy = 0;
  let plus = 1;
  let minus = (radius << 1) - 1;
  const inside = cx >= radius && cx < width - radius && cy >= radius && cy < height - radius;
  const inRows = (y: number) => y >= 0 && y < height;
  while (dx >= dy) {
    const y11 = cy - dy;
    const y12 = cy + dy;
    const y21 = cy - dx;
    const y22 = cy + dx;
    let x11 = cx - dx;
    let x12 = cx + dx;
    let x21 = cx - dy;
    let x22 = cx + dy;
    if (inside) {
      hline(img, y11, x11, x12, c);
      hline(img, y12, x11, x12, c);
      hline(img, y21, x21, x22, c);
      hline(img, y22, x21, x22, c);
    } else if (x11 < width && x12 >= 0 && y21 < height && y22 >= 0) {
      x11 = Math.max(x11, 0);
      x12 = Math.min(x12, width - 1);
      if (inRows(y11)) hline(img, y11, x11, x12, c);
      if (inRows(y12)) hline(img, y12, x11, x12, c);
      if (x21 < width && x22 >= 0) {
        x21 = Math.max(x21, 0);
        x22 = Math.min(x22, width - 1);
        if (inRows(y21)) hline(img, y21, x21, x22, c);
        if (inRows(y22)) hline(img, y22, x21, x22, c);
      }
    }
    dy++;
    err += plus;
    plus += 2;
    const mask = err <= 0 ? 0 : -1;
    err -= minus & mask;
    dx += mask;
    minus -= mask & 2;
  }
}

/** cv2.circle(img, center, radius, color, thickness=-1) (LINE_8, shift 0). */
export function fillCircle(img: Canvas, center: Point, radius: number, color: Color): void {
  filledCircle(img, center[0], center[1], radius, saturate(color));
}

/** cv2.line(img, p1, p2, color, thickness) (LINE_8, shift 0): cv::ThickLine with round caps. */
export function drawLine(img: Canvas, p1: Point, p2: Point, color: Color, thickness: number): void {
  const c = saturate(color);
  if (thickness <= 1) {
    line8(img, p1, p2, c);
    return;
  }
  const p0x = p1[0] * XY_ONE;
  const p0y = p1[1] * XY_ONE;
  const p1x = p2[0] * XY_ONE;
  const p1y = p2[1] * XY_ONE;
  const dx = (p0x - p1x) / XY_ONE;
  const dy = (p1y - p0y) / XY_ONE;
  let r = dx * dx + dy * dy;
  const odd = thickness & 1;
  const thick = thickness * 2 ** (XY_SHIFT - 1);
  if (Math.abs(r) > Number.EPSILON) {
    r = (thick + odd * XY_ONE * 0.5) / Math.sqrt(r);
    const dpx = cvRound(dy * r);
    const dpy = cvRound(dx * r);
    const pts: Point[] = [
      [p0x + dpx, p0y + dpy],
      [p0x - dpx, p0y - dpy],
      [p1x - dpx, p1y - dpy],
      [p1x + dpx, p1y + dpy],
    ];
    fillConvexPolyRaw(img, pts, c, XY_SHIFT);
  }
  const radius = shr(thick + (XY_ONE >> 1), XY_SHIFT);
  for (const [x, y] of [
    [p0x, p0y],
    [p1x, p1y],
  ] as const) {
    filledCircle(img, shr(x + (XY_ONE >> 1), XY_SHIFT), shr(y + (XY_ONE >> 1), XY_SHIFT), radius, c);
  }
}

/** OpenCV's SinTable: sin(i degrees) for i in 0..450, as float literals with 7 decimals. */
const SIN_TABLE = (() => {
  const t = new Float64Array(451);
  for (let i = 0; i <= 450; i++) t[i] = Math.fround(Number(Math.sin((i * Math.PI) / 180).toFixed(7)));
  return t;
})();

/** cv2.ellipse2Poly(center, axes, angle, arcStart, arcEnd, delta) with integer arguments. */
export function ellipse2Poly(
  center: Point,
  axes: readonly [number, number],
  angleIn: number,
  arcStartIn: number,
  arcEndIn: number,
  delta: number,
): Point[] {
  let angle = angleIn;
  let arcStart = arcStartIn;
  let arcEnd = arcEndIn;
  while (angle < 0) angle += 360;
  while (angle > 360) angle -= 360;
  if (arcStart > arcEnd) [arcStart, arcEnd] = [arcEnd, arcStart];
  while (arcStart < 0) {
    arcStart += 360;
    arcEnd += 360;
  }
  while (arcEnd > 360) {
    arcEnd -= 360;
    arcStart -= 360;
  }
  if (arcEnd - arcStart > 360) {
    arcStart = 0;
    arcEnd = 360;
  }
  const a = angle + (angle < 0 ? 360 : 0);
  const beta = SIN_TABLE[a]!;
  const alpha = SIN_TABLE[450 - a]!;
  const pts: Point[] = [];
  let prev: Point | undefined;
  for (let i = arcStart; i < arcEnd + delta; i += delta) {
    let t = i;
    if (t > arcEnd) t = arcEnd;
    if (t < 0) t += 360;
    const x = axes[0] * SIN_TABLE[450 - t]!;
    const y = axes[1] * SIN_TABLE[t]!;
    const pt: Point = [cvRound(center[0] + x * alpha - y * beta), cvRound(center[1] + x * beta + y * alpha)];
    if (!prev || pt[0] !== prev[0] || pt[1] !== prev[1]) {
      pts.push(pt);
      prev = pt;
    }
  }
  if (pts.length === 1) return [center, center];
  return pts;
}
