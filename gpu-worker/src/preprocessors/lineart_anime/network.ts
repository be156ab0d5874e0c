import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';

/** InstanceNorm2d's eps (affine=False, track_running_stats=False). */
const EPS = 1e-5;

/** One UnetSkipConnectionBlock's parameter names and channel counts. */
interface Level {
  down: string;
  up: string;
}

/**
 * Anime2Sketch's UnetGenerator(3, 1, num_downs=8, ngf=64) with InstanceNorm (no affine) as ControlNet 1.1's
 * annotator/lineart_anime builds it (netG.pth). Input [1, H, W, 3] RGB / 127.5 - 1 with H and W multiples of 256;
 * output [1, H, W, 1] in (-1, 1) (tanh).
 *
 * Each inner block starts with an in-place LeakyReLU(0.2) on its input, so the skip connection it concatenates
 * is the LeakyReLU'd input, not the input itself; this reproduces that.
 */
export class LineartAnimeNetwork implements Network {
  readonly kind = 'lineart-anime';
  readonly params = new ParamStore();
  /** Blocks from the outermost inwards; the last is the innermost. */
  private readonly levels: Level[] = [];

  constructor() {
    const ngf = 64;
    // (outer_nc, inner_nc) from the outermost block inwards; the outermost takes 3 channels and gives 1.
    const channels: [number, number][] = [
      [1, ngf],
      [ngf, ngf * 2],
      [ngf * 2, ngf * 4],
      [ngf * 4, ngf * 8],
      [ngf * 8, ngf * 8],
      [ngf * 8, ngf * 8],
      [ngf * 8, ngf * 8],
      [ngf * 8, ngf * 8],
    ];
    let prefix = 'model.model';
    for (const [i, [outer, inner]] of channels.entries()) {
      const innermost = i === channels.length - 1;
      const downIndex = i === 0 ? 0 : 1;
      const upIndex = i === 0 ? 3 : innermost ? 3 : 5;
      const level = { down: `${prefix}.${downIndex}`, up: `${prefix}.${upIndex}` };
      this.params.declare(`${level.down}.weight`, [inner, i === 0 ? 3 : outer, 4, 4]);
      this.params.declare(`${level.down}.bias`, [inner]);
      // ConvTranspose2d [in, out, kh, kw]; all but the innermost take the concatenated skip (2 * inner).
      this.params.declare(`${level.up}.weight`, [innermost ? inner : inner * 2, outer, 4, 4]);
      this.params.declare(`${level.up}.bias`, [outer]);
      this.levels.push(level);
      prefix = i === 0 ? `${prefix}.1.model` : `${prefix}.3.model`;
    }
  }

  forward<T>(ops: Ops<T>, inputs: T[]): NetworkOutput<T>[] {
    const p = (name: string) => this.params.get(name);
    const down = (x: T, level: Level) =>
      ops.conv(x, p(`${level.down}.weight`), p(`${level.down}.bias`), { stride: 2, pad: 1 });
    const up = (x: T, level: Level) =>
      ops.convTranspose(ops.relu(x), p(`${level.up}.weight`), p(`${level.up}.bias`), 2, 1);
    const outermost = this.levels[0]!;
    const inner = (depth: number, x: T): T => {
      const level = this.levels[depth]!;
      const skip = ops.leakyRelu(x, 0.2);
      let y: T;
      if (depth === this.levels.length - 1) {
        y = down(skip, level);
      } else {
        y = inner(depth + 1, ops.instanceNorm(down(skip, level), EPS));
      }
      return ops.concatChannels([skip, ops.instanceNorm(up(y, level), EPS)]);
    };
    const y = inner(1, down(inputs[0]!, outermost));
    return [{ value: ops.tanh(up(y, outermost)), image: true }];
  }
}
