// The playground's start image for img2img and inpainting: upload an image, optionally paint the area to
// repaint over it. The painted strokes are kept on a separate black canvas in white (the API's mask
// convention), shown over the image in translucent red.

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const SIDE = 512;

/** Wires the "Start image" section; returns what the request needs from it. */
export function setUpInitImage() {
  const image = /** @type {HTMLCanvasElement} */ ($('init-canvas'));
  const overlay = /** @type {HTMLCanvasElement} */ ($('mask-canvas'));
  // Hidden, in the page: what is sent as the mask (tests read it back).
  const mask = /** @type {HTMLCanvasElement} */ ($('mask-data'));
  const imageContext = /** @type {CanvasRenderingContext2D} */ (image.getContext('2d'));
  const overlayContext = /** @type {CanvasRenderingContext2D} */ (overlay.getContext('2d'));
  const maskContext = /** @type {CanvasRenderingContext2D} */ (mask.getContext('2d'));
  const state = { loaded: false, painted: false };
  const strength = /** @type {HTMLInputElement} */ ($('strength'));

  const reset = (width, height) => {
    for (const canvas of [image, overlay, mask]) {
      canvas.width = width;
      canvas.height = height;
    }
    maskContext.fillStyle = '#000';
    maskContext.fillRect(0, 0, width, height);
    overlayContext.clearRect(0, 0, width, height);
    state.painted = false;
  };

  /** @type {HTMLInputElement} */ ($('init-file')).addEventListener('change', async (event) => {
    const file = /** @type {HTMLInputElement} */ (event.target).files?.[0];
    if (!file) return;
    const bitmap = await createImageBitmap(file);
    const scale = SIDE / Math.max(bitmap.width, bitmap.height);
    reset(Math.round(bitmap.width * scale), Math.round(bitmap.height * scale));
    imageContext.drawImage(bitmap, 0, 0, image.width, image.height);
    state.loaded = true;
    $('init-box').hidden = false;
  });
  $('init-remove').addEventListener('click', () => {
    state.loaded = false;
    reset(SIDE, SIDE);
    $('init-box').hidden = true;
    /** @type {HTMLInputElement} */ ($('init-file')).value = '';
  });
  $('mask-clear').addEventListener('click', () => reset(image.width, image.height));

  let painting = false;
  const point = (event) => {
    const rect = overlay.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) / rect.width) * overlay.width,
      ((event.clientY - rect.top) / rect.height) * overlay.height,
    ];
  };
  const brush = () => Number(/** @type {HTMLInputElement} */ ($('brush')).value) || 32;
  overlay.addEventListener('pointerdown', (event) => {
    painting = true;
    overlay.setPointerCapture(event.pointerId);
    // Inpainting usually repaints from noise: the first stroke moves an untouched strength to 1.
    if (!state.painted && strength.dataset['touched'] !== 'true') strength.value = '1';
    for (const context of [overlayContext, maskContext]) {
      context.beginPath();
      context.moveTo(...point(event));
    }
  });
  overlay.addEventListener('pointermove', (event) => {
    if (!painting) return;
    for (const [context, colour] of [
      [overlayContext, 'rgba(255, 0, 0, 0.45)'],
      [maskContext, '#fff'],
    ]) {
      context.lineWidth = brush();
      context.lineCap = 'round';
      context.lineJoin = 'round';
      context.strokeStyle = colour;
      context.lineTo(...point(event));
      context.stroke();
    }
    state.painted = true;
  });
  const stop = () => {
    painting = false;
  };
  overlay.addEventListener('pointerup', stop);
  overlay.addEventListener('pointerleave', stop);
  strength.addEventListener('input', () => {
    strength.dataset['touched'] = 'true';
  });

  const blob = (canvas) => new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  return {
    /** The request fields of the start image (none when no image is loaded). */
    async fields() {
      if (!state.loaded) return {};
      const fields = { init_image: await blob(image), strength: Number(strength.value) };
      if (!state.painted) return fields;
      return {
        ...fields,
        mask: await blob(mask),
        mask_blur: Number(/** @type {HTMLInputElement} */ ($('mask_blur')).value),
      };
    },
    /** The painted mask as a PNG (inpaint control units use it too), or undefined when nothing is painted. */
    async maskBlob() {
      return state.loaded && state.painted ? await blob(mask) : undefined;
    },
    /** The mask as the API will get it (for tests and debugging). */
    mask,
  };
}
