/** A one-channel uint8 plane drawn on in place. */
export interface Plane8 {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * OpenCV's clipLine (imgproc/drawing.cpp, int64 Cohen-Sutherland against [0, w-1] x [0, h-1]): the clipped
 * endpoints, or undefined when the segment misses the image. Divisions truncate toward zero as C++ does.
 */
export function clipLine(
  width: number,
  height: number,
  p: readonly [number, number, number, number],
): [number, number, number, number] | undefined {
  if (width <= 0 || height <= 0) return undefined;
  const right = width - 1;
  const bottom = height - 1;
  let [x1, y1, x2, y2] = p;
  let c1 = +(x1 < 0) + +(x1 > right) * 2 + +(y1 < 0) * 4 + +(y1 > bottom) * 8;
  let c2 = +(x2 < 0) + +(x2 > right) * 2 + +(y2 < 0) * 4 + +(y2 > bottom) * 8;
  if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
    // Each step reads the endpoints as the previous steps left them, as the C++ (references) does.
    if (c1 & 12) {
      const a = c1 < 8 ? 0 : bottom;
      x1 += Math.trunc(((a - y1) * (x2 - x1)) / (y2 - y1));
      y1 = a;
      c1 = +(x1 < 0) + +(x1 > right) * 2;
    }
    if (c2 & 12) {
      const a = c2 < 8 ? 0 : bottom;
      x2 += Math.trunc(((a - y2) * (x2 - x1)) / (y2 - y1));
      y2 = a;
      c2 = +(x2 < 0) + +(x2 > right) * 2;
    }
    if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
      if (c1) {
        const a = c1 === 1 ? 0 : right;
        y1 += Math.trunc(((a - x1) * (y2 - y1)) / (x2 - x1));
        x1 = a;
        c1 = 0;
      }
      if (c2) {
        const a = c2 === 1 ? 0 : right;
        y2 += Math.trunc(((a - x2) * (y2 - y1)) / (x2 - x1));
        x2 = a;
        c2 = 0;
      }
    }
  }
  return (c1 | c2) === 0 ? [x1, y1, x2, y2] : undefined;
}

/**
 * cv2.line(img, (x0, y0), (x1, y1), value, thickness=1, lineType=LINE_8) with integer endpoints: OpenCV draws it
 * with clipLine and an 8-connected LineIterator walked left to right (Bresenham with err = dx - 2dy), which this
 * reproduces pixel for pixel.
 */
export function drawLine(plane: Plane8, x0: number, y0: number, x1: number, y1: number, value = 255): void {
  const { width, height, data } = plane;
  let p: [number, number, number, number] | undefined = [x0, y0, x1, y1];
  const outside = (x: number, size: number) => x < 0 || x >= size;
  if (outside(x0, width) || outside(x1, width) || outside(y0, height) || outside(y1, height)) {
    p = clipLine(width, height, p);
    if (!p) return;
  }
  let [ax, ay, bx, by] = p;
  let dx = bx - ax;
  let dy = by - ay;
  if (dx < 0) {
    // left_to_right: always walk from the endpoint with the smaller x.
    dx = -dx;
    dy = -dy;
    ax = bx;
    ay = by;
  }
  const stepY = dy < 0 ? -1 : 1;
  dy = Math.abs(dy);
  // The major axis advances every pixel ("minus" step); the minor one when the error goes negative ("plus").
  let majorX = 1;
  let majorY = 0;
  let minorX = 0;
  let minorY = stepY;
  if (dy > dx) {
    [dx, dy] = [dy, dx];
    [majorX, majorY, minorX, minorY] = [minorX, minorY, majorX, majorY];
  }
  let err = dx - (dy + dy);
  const plusDelta = dx + dx;
  const minusDelta = -(dy + dy);
  let x = ax;
  let y = ay;
  for (let i = 0; i <= dx; i++) {
    data[y * width + x] = value;
    if (err < 0) {
      err += minusDelta + plusDelta;
      x += majorX + minorX;
      y += majorY + minorY;
    } else {
      err += minusDelta;
      x += majorX;
      y += majorY;
    }
  }
}
