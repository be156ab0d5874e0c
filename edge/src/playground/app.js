// The playground's script: plain DOM and the SDK, bundled with it by build.mjs into assets.generated.ts.
// Defaults come from the API's own OpenAPI document and the preprocessors (per control type, with their
// parameters) from the SDK's catalogue, both generated from the shared zod schemas, so the page offers exactly
// what the API accepts.
import {
  ApiError,
  Contour,
  isNetworkPreprocessor,
  PREPROCESSORS,
  preprocessorsFor,
  ValidationError,
} from '@contour/sdk';
import { setUpInitImage } from './init-image.js';

const KEY_STORAGE = 'contour.playground.key';
const MAX_UNITS = 4;
const CANVAS_SIDE = 512;
const PREVIEW_DEBOUNCE_MS = 350;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Takes `#key=...` from the URL (npm start prints such a link) once, then remembers it for this tab. */
function initialKey() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('key');
  if (fromHash) {
    sessionStorage.setItem(KEY_STORAGE, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY_STORAGE) ?? '';
}

let contour = makeClient(initialKey());

function makeClient(key) {
  if (!key) return null;
  return key.startsWith('ct_')
    ? new Contour({ clientToken: key })
    : // The playground is served by the API itself, for the key's owner: the one place a key may be typed in.
      new Contour({ apiKey: key, dangerouslyAllowBrowser: true });
}

const api = { unitSchemas: new Map(), models: [] };

async function loadApiDescription() {
  const doc = await (await fetch('/openapi.json')).json();
  const schemas = doc.components.schemas;
  const resolve = (schema) => (schema?.$ref ? schemas[schema.$ref.split('/').pop()] : schema);
  for (const variant of schemas.ControlUnit.oneOf ?? []) {
    const type = variant.properties.type.enum[0];
    api.unitSchemas.set(type, { ...variant.properties, params: resolve(variant.properties.params) });
  }
  const request = schemas.GenerationRequest.properties;
  for (const field of [
    'added_prompt',
    'negative_prompt',
    'steps',
    'guidance_scale',
    'eta',
    'image_resolution',
    'num_images',
  ]) {
    const input = /** @type {HTMLInputElement} */ ($(field));
    if (request[field]?.default !== undefined) input.value = String(request[field].default);
  }
  /** @type {HTMLInputElement} */ ($('guess_mode')).checked = request.guess_mode?.default === true;
  // The sampler names come from the API description, so a new sampler shows up without a playground change.
  const schedulers = resolve(request.scheduler);
  const select = /** @type {HTMLSelectElement} */ ($('scheduler'));
  for (const name of schedulers?.enum ?? ['ddim']) select.append(new Option(name, name));
  select.value = String(request.scheduler?.default ?? schedulers?.default ?? 'ddim');
  const models = await (await fetch('/v1/models')).json();
  api.models = models.data;
  suggestFromPool(models.pool ?? []);
}

/**
 * When the pool runs a built-in model (no real weights configured), say what it draws and fill in a request
 * of the kind it was trained on: its prompt, steps and guidance, no added or negative prompt (words it never saw).
 */
function suggestFromPool(pool) {
  const model = pool.find((m) => m.builtin && m.suggested);
  if (!model) return;
  const note = $('model-note');
  note.textContent = `The workers run ${model.name}. ${model.description ?? ''} Draw a circle (or upload one) and try "${model.suggested.prompt}".`;
  note.hidden = false;
  /** @type {HTMLTextAreaElement} */ ($('prompt')).value = model.suggested.prompt;
  /** @type {HTMLInputElement} */ ($('added_prompt')).value = '';
  /** @type {HTMLTextAreaElement} */ ($('negative_prompt')).value = '';
  /** @type {HTMLInputElement} */ ($('steps')).value = String(model.suggested.steps);
  /** @type {HTMLInputElement} */ ($('guidance_scale')).value = String(model.suggested.guidance_scale);
}

function showError(error) {
  let text = error instanceof Error ? error.message : String(error);
  if (error instanceof ValidationError) {
    text += `\n${Object.entries(error.fieldErrors)
      .map(([path, messages]) => `  ${path || 'body'}: ${messages.join('; ')}`)
      .join('\n')}`;
  }
  $('error').textContent = text;
}

async function refreshBalance() {
  if (!contour) return;
  try {
    const balance = await contour.billing.balance();
    $('balance').textContent = `balance: ${balance.available.toLocaleString()} credits`;
  } catch {
    $('balance').textContent = 'balance: n/a';
  }
}

// ---------------------------------------------------------------- control units

/** @type {ReturnType<typeof createUnit>[]} */
const units = [];

function canvasBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
}

function createUnit() {
  const element = document.createElement('div');
  element.className = 'unit';
  const index = units.length;
  element.innerHTML = `
    <div class="row">
      <label>Type <select data-role="type"></select></label>
      <label data-role="preprocessor-box">Preprocessor <select data-role="preprocessor" data-testid="preprocessor-${index}"></select></label>
    </div>
    <div class="row">
      <label>Image <input data-role="file" type="file" accept="image/png,image/jpeg,image/webp" /></label>
      <button data-role="clear" type="button">Clear canvas</button>
      <button data-role="remove" type="button">Remove</button>
    </div>
    <div class="row" data-role="params"></div>
    <div class="row" data-role="network" hidden>
      <label title="Short side the image is resized to before the annotator runs">Detect resolution <input data-role="detect" type="number" step="64" /></label>
      <label title="Pick the detect resolution so the map needs no rescale to the output size (A1111 pixel perfect)"><input data-role="pixel-perfect" type="checkbox" /> Pixel perfect</label>
    </div>
    <div class="row">
      <label>Strength <input data-role="strength" type="number" min="0" max="2" step="0.05" value="1" /></label>
      <label><input data-role="preprocess" type="checkbox" checked /> Preprocess</label>
    </div>
    <div class="images">
      <div class="canvas-box">
        <canvas data-role="canvas" width="${CANVAS_SIDE}" height="${CANVAS_SIDE}" title="Draw here, or upload an image"></canvas>
        <span class="hint" data-role="hint">✎ Draw here with the mouse or a finger, or choose an image above</span>
      </div>
      <div class="preview-box"><img class="preview" data-testid="preview-${index}" alt="control map preview" /><span data-role="status">draw or upload</span></div>
    </div>`;
  const q = (role) => /** @type {any} */ (element.querySelector(`[data-role="${role}"]`));
  const canvas = /** @type {HTMLCanvasElement} */ (q('canvas'));
  const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  const unit = { element, canvas, hasImage: false, previewTimer: 0, previewAbort: new AbortController() };

  // The hint over the empty canvas says where to draw; it goes once there is a drawing or an image.
  const setHasImage = (value) => {
    unit.hasImage = value;
    q('hint').hidden = value;
  };
  const clear = () => {
    context.fillStyle = '#fff';
    context.fillRect(0, 0, canvas.width, canvas.height);
    setHasImage(false);
  };
  clear();

  const typeSelect = q('type');
  const served = api.models.filter((m) => m.served || m.preprocessor === 'cheap');
  for (const model of served.length ? served : api.models) {
    const option = new Option(`${model.type} — ${model.description}`, model.type);
    typeSelect.append(option);
  }
  typeSelect.value = 'canny';

  // The preprocessors the unit's control type accepts (default first); none for tile-like types.
  const preprocessorSelect = /** @type {HTMLSelectElement} */ (q('preprocessor'));
  const detect = /** @type {HTMLInputElement} */ (q('detect'));
  const pixelPerfect = /** @type {HTMLInputElement} */ (q('pixel-perfect'));
  const listPreprocessors = () => {
    const names = preprocessorsFor(typeSelect.value);
    // /v1/models says which network ones some worker has the weights of.
    const listed = api.models.find((m) => m.type === typeSelect.value)?.preprocessors ?? [];
    const available = (name) => listed.find((p) => p.name === name)?.available !== false;
    preprocessorSelect.replaceChildren(
      ...names.map((name) => {
        const info = PREPROCESSORS[name];
        const where =
          info.stage === 'worker' ? (available(name) ? ' (GPU)' : ' (GPU, weights not installed)') : '';
        const option = new Option(`${name}${where} — ${info.description}`, name);
        if (info.weights.length) option.title = `needs ${info.weights.join(', ')}`;
        return option;
      }),
    );
    q('preprocessor-box').hidden = names.length === 0;
  };
  unit.preprocessor = () => preprocessorSelect.value || undefined;

  const renderParams = () => {
    const name = unit.preprocessor();
    const box = q('params');
    box.replaceChildren();
    // detect_resolution has its own control next to pixel perfect (network preprocessors only).
    const { detect_resolution: detectSpec, ...own } = name ? PREPROCESSORS[name].params : {};
    q('network').hidden = !detectSpec;
    if (detectSpec) {
      detect.min = String(detectSpec.minimum ?? 64);
      detect.max = String(detectSpec.maximum ?? 2048);
      detect.value = String(detectSpec.default ?? 512);
    }
    for (const [param, spec] of Object.entries(own)) {
      const label = document.createElement('label');
      label.textContent = `${param} `;
      const input = document.createElement('input');
      input.type = 'number';
      input.dataset['param'] = param;
      input.dataset['integer'] = String(spec.type === 'integer');
      if (spec.type === 'number') input.step = 'any';
      if (spec.minimum !== undefined) input.min = String(spec.minimum);
      if (spec.maximum !== undefined) input.max = String(spec.maximum);
      if (spec.default !== undefined) input.value = String(spec.default);
      if (spec.description) label.title = spec.description;
      input.addEventListener('input', () => schedulePreview(unit));
      label.append(input);
      box.append(label);
    }
  };
  // A new control type: its preprocessors, and the API's defaults for preprocess and strength.
  const applyType = () => {
    const schema = api.unitSchemas.get(typeSelect.value);
    listPreprocessors();
    renderParams();
    /** @type {HTMLInputElement} */ (q('preprocess')).checked = schema?.preprocess?.default ?? false;
    /** @type {HTMLInputElement} */ (q('strength')).value = String(schema?.strength?.default ?? 1);
  };
  applyType();
  typeSelect.addEventListener('change', () => {
    applyType();
    schedulePreview(unit);
  });
  preprocessorSelect.addEventListener('change', () => {
    renderParams();
    schedulePreview(unit);
  });
  detect.addEventListener('input', () => schedulePreview(unit));
  pixelPerfect.addEventListener('change', () => {
    detect.disabled = pixelPerfect.checked;
    schedulePreview(unit);
  });
  q('preprocess').addEventListener('change', () => schedulePreview(unit));

  unit.read = () => {
    const params = {};
    for (const input of element.querySelectorAll('[data-param]')) {
      if (input.value === '') continue;
      params[input.dataset.param] =
        input.dataset.integer === 'true' ? Number.parseInt(input.value, 10) : Number(input.value);
    }
    const preprocessor = unit.preprocessor();
    const network = preprocessor !== undefined && isNetworkPreprocessor(preprocessor);
    // Pixel perfect picks detect_resolution itself; otherwise the chosen one is sent.
    if (network && !pixelPerfect.checked && detect.value !== '') {
      params['detect_resolution'] = Number.parseInt(detect.value, 10);
    }
    return {
      type: typeSelect.value,
      ...(preprocessor ? { preprocessor } : {}),
      ...(network ? { pixel_perfect: pixelPerfect.checked } : {}),
      params,
      strength: Number(q('strength').value),
      preprocess: /** @type {HTMLInputElement} */ (q('preprocess')).checked,
    };
  };
  unit.setStatus = (text, problem = false) => {
    const status = q('status');
    status.textContent = text;
    status.classList.toggle('problem', problem);
  };

  q('file').addEventListener('change', async (event) => {
    const file = event.target.files?.[0];
    if (!file) return;
    const bitmap = await createImageBitmap(file);
    // The canvas takes the image's aspect (long side CANVAS_SIDE) so the control map is not stretched.
    const scale = CANVAS_SIDE / Math.max(bitmap.width, bitmap.height);
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    setHasImage(true);
    schedulePreview(unit);
  });
  q('clear').addEventListener('click', () => {
    canvas.width = CANVAS_SIDE;
    canvas.height = CANVAS_SIDE;
    clear();
    /** @type {HTMLImageElement} */ (element.querySelector('.preview')).removeAttribute('src');
    unit.setStatus('draw or upload');
  });
  q('remove').addEventListener('click', () => {
    if (units.length === 1) return;
    units.splice(units.indexOf(unit), 1);
    element.remove();
  });

  // Freehand drawing: black strokes, as a scribble or sketch.
  let drawing = false;
  const point = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) / rect.width) * canvas.width,
      ((event.clientY - rect.top) / rect.height) * canvas.height,
    ];
  };
  canvas.addEventListener('pointerdown', (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    context.beginPath();
    context.moveTo(...point(event));
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!drawing) return;
    context.lineWidth = Math.max(2, canvas.width / 128);
    context.lineCap = 'round';
    context.strokeStyle = '#000';
    context.lineTo(...point(event));
    context.stroke();
  });
  const stop = () => {
    if (!drawing) return;
    drawing = false;
    setHasImage(true);
    schedulePreview(unit);
  };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointerleave', stop);

  units.push(unit);
  $('units').append(element);
  return unit;
}

function schedulePreview(unit) {
  clearTimeout(unit.previewTimer);
  unit.previewTimer = setTimeout(() => preview(unit), PREVIEW_DEBOUNCE_MS);
}

/** What a failed preview says: a network preprocessor without weights names the files to install. */
function previewProblem(error, preprocessor) {
  if (error instanceof ApiError && error.code === 'model_not_available') {
    const weights = preprocessor ? PREPROCESSORS[preprocessor].weights.join(', ') : '';
    return `install weights on the GPU worker${weights ? ` (${weights})` : ''}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Live control-map preview through POST /v1/preprocess (the latest request wins; network ones on a worker). */
async function preview(unit) {
  if (!unit.hasImage || !contour) return;
  const { type, preprocessor, pixel_perfect, params, preprocess } = unit.read();
  const img = /** @type {HTMLImageElement} */ (unit.element.querySelector('.preview'));
  if (!preprocess) {
    img.src = unit.canvas.toDataURL('image/png');
    unit.setStatus('used as the control map');
    return;
  }
  unit.previewAbort.abort();
  unit.previewAbort = new AbortController();
  const signal = unit.previewAbort.signal;
  const mask = preprocessor === 'inpaint' ? await initImage.maskBlob() : undefined;
  if (preprocessor === 'inpaint' && !mask) {
    img.removeAttribute('src');
    unit.setStatus('inpaint: paint the area to repaint on the start image below', true);
    return;
  }
  unit.setStatus(
    preprocessor && isNetworkPreprocessor(preprocessor)
      ? `${preprocessor} on a GPU worker…`
      : 'preprocessing…',
  );
  try {
    const result = await contour.preprocess(
      {
        ...(preprocessor ? { preprocessor } : { type }),
        image: await canvasBlob(unit.canvas),
        ...(mask ? { mask } : {}),
        params,
        ...(pixel_perfect ? { pixel_perfect } : {}),
        image_resolution: Number(/** @type {HTMLInputElement} */ ($('image_resolution')).value),
      },
      { signal },
    );
    if (signal.aborted) return;
    img.src = result.url;
    const people = result.keypoints ? ` · ${result.keypoints.people.length} people` : '';
    const detected = result.detect_resolution ? ` · detect ${result.detect_resolution}` : '';
    unit.setStatus(`${result.preprocessor} ${result.width}×${result.height}${detected}${people}`);
  } catch (error) {
    if (signal.aborted) return;
    img.removeAttribute('src');
    unit.setStatus(previewProblem(error, preprocessor), true);
  }
}

// ---------------------------------------------------------------- generation

let running = null;
/** The start image section (img2img / inpaint). */
let initImage = { fields: async () => ({}), maskBlob: async () => undefined };

function numberField(id) {
  const value = /** @type {HTMLInputElement} */ ($(id)).value;
  return value === '' ? undefined : Number(value);
}

async function buildRequest() {
  const controls = [];
  for (const unit of units) {
    if (!unit.hasImage) continue;
    const control = { ...unit.read(), image: await canvasBlob(unit.canvas) };
    // An inpaint unit takes the mask painted on the start image.
    if (control.type === 'inpaint') control.mask = await initImage.maskBlob();
    controls.push(control);
  }
  if (controls.length === 0) throw new Error('Draw or upload an image in at least one control unit');
  const request = {
    prompt: /** @type {HTMLTextAreaElement} */ ($('prompt')).value,
    added_prompt: /** @type {HTMLInputElement} */ ($('added_prompt')).value,
    negative_prompt: /** @type {HTMLTextAreaElement} */ ($('negative_prompt')).value,
    controls,
    steps: numberField('steps'),
    scheduler: /** @type {HTMLSelectElement} */ ($('scheduler')).value,
    guidance_scale: numberField('guidance_scale'),
    eta: numberField('eta'),
    image_resolution: numberField('image_resolution'),
    num_images: numberField('num_images'),
    guess_mode: /** @type {HTMLInputElement} */ ($('guess_mode')).checked,
    ...(await initImage.fields()),
  };
  const seed = numberField('seed');
  if (seed !== undefined) request.seed = seed;
  return request;
}

function setProgress(step, total) {
  const bar = /** @type {HTMLProgressElement} */ ($('progress'));
  bar.max = Math.max(total, 1);
  bar.value = step;
  $('progress-text').textContent = total ? `step ${step} / ${total}` : '';
}

function addToGallery(generation) {
  const card = document.createElement('div');
  card.className = 'card';
  card.dataset['generationId'] = generation.id;
  for (const output of generation.outputs) {
    const figure = document.createElement('figure');
    const img = new Image();
    img.className = 'output';
    img.alt = `output ${output.index}`;
    img.src = output.url;
    const caption = document.createElement('figcaption');
    caption.textContent = `#${output.index} · ${output.width}×${output.height} · seed ${generation.seed}`;
    figure.append(img, caption);
    card.append(figure);
  }
  for (const map of generation.control_maps) {
    const figure = document.createElement('figure');
    const img = new Image();
    img.className = 'control-map';
    img.alt = `${map.type} control map`;
    img.src = map.url;
    const caption = document.createElement('figcaption');
    caption.textContent = `control ${map.index}: ${map.type}`;
    figure.append(img, caption);
    card.append(figure);
  }
  const meta = document.createElement('p');
  meta.className = 'cost';
  meta.textContent = `${generation.cost.credits} credits · ${generation.steps} steps · ${generation.id}`;
  card.append(meta);
  $('gallery').prepend(card);
}

async function generate() {
  if (!contour) return showError(new Error('Enter an API key first'));
  $('error').textContent = '';
  const button = /** @type {HTMLButtonElement} */ ($('generate'));
  button.disabled = true;
  /** @type {HTMLButtonElement} */ ($('cancel')).disabled = false;
  running = new AbortController();
  setProgress(0, 0);
  try {
    const request = await buildRequest();
    const created = await contour.generations.create(request, { signal: running.signal });
    $('cost').textContent = `cost: ${created.cost.credits} credits`;
    setProgress(created.progress.step, created.progress.total);
    refreshBalance();
    const generation = await contour.generations.wait(created.id, {
      signal: running.signal,
      onProgress: ({ step, total }) => setProgress(step, total),
    });
    addToGallery(generation);
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
    /** @type {HTMLButtonElement} */ ($('cancel')).disabled = true;
    running = null;
    refreshBalance();
  }
}

async function main() {
  const keyInput = /** @type {HTMLInputElement} */ ($('api-key'));
  keyInput.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
  keyInput.addEventListener('change', () => {
    sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
    contour = makeClient(keyInput.value.trim());
    refreshBalance();
  });
  await loadApiDescription();
  initImage = setUpInitImage();
  createUnit();
  $('add-unit').addEventListener('click', () => {
    if (units.length < MAX_UNITS) createUnit();
  });
  $('generate').addEventListener('click', generate);
  $('cancel').addEventListener('click', () => running?.abort(new Error('Canceled')));
  document.body.dataset['ready'] = 'true';
  refreshBalance();
}

main().catch(showError);
