import { type Canvas, drawLine, ellipse2Poly, fillCircle, fillConvexPoly } from './cv-draw.ts';

/** The 19 limbs (1-based COCO-18 part pairs) of annotator/openpose; the drawing uses the first 17. */
export const LIMB_SEQ: readonly (readonly [number, number])[] = [
  [2, 3],
  [2, 6],
  [3, 4],
  [4, 5],
  [6, 7],
  [7, 8],
  [2, 9],
  [9, 10],
  [10, 11],
  [2, 12],
  [12, 13],
  [13, 14],
  [2, 1],
  [1, 15],
  [15, 17],
  [1, 16],
  [16, 18],
  [3, 17],
  [6, 18],
];

const COLORS: readonly (readonly [number, number, number])[] = [
  [255, 0, 0],
  [255, 85, 0],
  [255, 170, 0],
  [255, 255, 0],
  [170, 255, 0],
  [85, 255, 0],
  [0, 255, 0],
  [0, 255, 85],
  [0, 255, 170],
  [0, 255, 255],
  [0, 170, 255],
  [0, 85, 255],
  [0, 0, 255],
  [85, 0, 255],
  [170, 0, 255],
  [255, 0, 255],
  [255, 0, 170],
  [255, 0, 85],
];

const HAND_EDGES: readonly (readonly [number, number])[] = [
  [0, 1],
  [1, 2],
  [2, 3],
  [3, 4],
  [0, 5],
  [5, 6],
  [6, 7],
  [7, 8],
  [0, 9],
  [9, 10],
  [10, 11],
  [11, 12],
  [0, 13],
  [13, 14],
  [14, 15],
  [15, 16],
  [0, 17],
  [17, 18],
  [18, 19],
  [19, 20],
];

const EPS = 0.01;

/** Python's int() of a float: truncation toward zero. */
const int = Math.trunc;

/** matplotlib.colors.hsv_to_rgb([h, 1, 1]) * 255 (float, OpenCV rounds it when drawing). */
function hsvColor(h: number): [number, number, number] {
  const i = Math.trunc(h * 6);
  const f = h * 6 - i;
  const q = 1 - f;
  const t = 1 - (1 - f);
  const rgb: [number, number, number][] = [
    [1, t, 0],
    [q, 1, 0],
    [0, 1, t],
    [0, q, 1],
    [t, 0, 1],
    [1, 0, q],
  ];
  const [r, g, b] = rgb[i % 6]!;
  return [r * 255, g * 255, b * 255];
}

/** Body pose as draw_pose receives it: candidate [x, y] normalised by W/H, subset rows of 20 (18 indices, score, count). */
export interface BodyPose {
  candidate: readonly (readonly number[])[];
  subset: readonly (readonly number[])[];
}

/** util.draw_bodypose: 17 limbs as filled ellipses, the canvas dimmed to 60%, then 18 joint circles. */
export function drawBodyPose(canvas: Canvas, { candidate, subset }: BodyPose): void {
  const { width: W, height: H } = canvas;
  for (let i = 0; i < 17; i++) {
    for (const person of subset) {
      const [a, b] = LIMB_SEQ[i]!;
      const ia = person[a - 1]!;
      const ib = person[b - 1]!;
      if (ia === -1 || ib === -1) continue;
      const Y = [candidate[int(ia)]![0]! * W, candidate[int(ib)]![0]! * W];
      const X = [candidate[int(ia)]![1]! * H, candidate[int(ib)]![1]! * H];
      const mX = (X[0]! + X[1]!) / 2;
      const mY = (Y[0]! + Y[1]!) / 2;
      const length = Math.sqrt((X[0]! - X[1]!) ** 2 + (Y[0]! - Y[1]!) ** 2);
      const angle = Math.atan2(X[0]! - X[1]!, Y[0]! - Y[1]!) * (180 / Math.PI);
      const polygon = ellipse2Poly([int(mY), int(mX)], [int(length / 2), 4], int(angle), 0, 360, 1);
      fillConvexPoly(canvas, polygon, COLORS[i]!);
    }
  }
  // (canvas * 0.6).astype(np.uint8)
  const d = canvas.data;
  for (let i = 0; i < d.length; i++) d[i] = Math.trunc(d[i]! * 0.6);
  for (let i = 0; i < 18; i++) {
    for (const person of subset) {
      const index = int(person[i]!);
      if (index === -1) continue;
      const [x, y] = candidate[index]!;
      fillCircle(canvas, [int(x! * W), int(y! * H)], 4, COLORS[i]!);
    }
  }
}

/** util.draw_handpose: 20 HSV-coloured edges (thickness 2) and (0, 0, 255) joint dots (blue in the RGB map). */
export function drawHandPose(canvas: Canvas, hands: readonly (readonly (readonly number[])[])[]): void {
  const { width: W, height: H } = canvas;
  for (const peaks of hands) {
    HAND_EDGES.forEach(([e0, e1], ie) => {
      const x1 = int(peaks[e0]![0]! * W);
      const y1 = int(peaks[e0]![1]! * H);
      const x2 = int(peaks[e1]![0]! * W);
      const y2 = int(peaks[e1]![1]! * H);
      if (x1 > EPS && y1 > EPS && x2 > EPS && y2 > EPS) {
        drawLine(canvas, [x1, y1], [x2, y2], hsvColor(ie / HAND_EDGES.length), 2);
      }
    });
    for (const [px, py] of peaks) {
      const x = int(px! * W);
      const y = int(py! * H);
      if (x > EPS && y > EPS) fillCircle(canvas, [x, y], 4, [0, 0, 255]);
    }
  }
}

/** util.draw_facepose: a white dot of radius 3 per landmark; coordinates normalised. */
export function drawFacePose(canvas: Canvas, faces: readonly (readonly (readonly number[])[])[]): void {
  const { width: W, height: H } = canvas;
  for (const lmks of faces) {
    for (const [px, py] of lmks) {
      const x = int(px! * W);
      const y = int(py! * H);
      if (x > EPS && y > EPS) fillCircle(canvas, [x, y], 3, [255, 255, 255]);
    }
  }
}

/** The pose draw_pose takes: body plus hand and face landmark lists (all normalised to [0, 1]). */
export interface Pose {
  bodies: BodyPose;
  hands: readonly (readonly (readonly number[])[])[];
  faces: readonly (readonly (readonly number[])[])[];
}

/** annotator/openpose draw_pose: body, then hands, then faces on a black H x W x 3 canvas. */
export function drawPose(
  pose: Pose,
  H: number,
  W: number,
  draw = { body: true, hand: true, face: true },
): Canvas {
  const canvas: Canvas = { data: new Uint8Array(H * W * 3), width: W, height: H };
  if (draw.body) drawBodyPose(canvas, pose.bodies);
  if (draw.hand) drawHandPose(canvas, pose.hands);
  if (draw.face) drawFacePose(canvas, pose.faces);
  return canvas;
}
