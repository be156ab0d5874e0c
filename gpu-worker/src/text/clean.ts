import { decodeHTML, decodeHTMLStrict } from 'entities';

/*
 * Prompt cleanup as OpenAI CLIP's tokenizer does it: ftfy.fix_text, html.unescape twice, strip, whitespace
 * collapse, lowercase. ftfy has no JavaScript port, so `fixText` re-implements the deterministic fixers ftfy 6
 * runs by default (same order, repeated until nothing changes): its HTML entity step, C1 controls as
 * Windows-1252, Latin ligatures, fullwidth/halfwidth forms, curly quotes, line breaks, lone surrogates, ANSI
 * escapes, control characters, NFC. What is left out is ftfy's heuristic mojibake repair (e.g. "cafÃ©" ->
 * "café"); such text keeps its mojibake and tokenizes differently from the original.
 */

/** Unicode White_Space plus the separators Python's str.isspace also counts (\x1c-\x1f), as Python's \s. */
const WHITESPACE =
  '\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${WHITESPACE}]+`, 'gu');
const EDGE_WHITESPACE = new RegExp(`^[${WHITESPACE}]+|[${WHITESPACE}]+$`, 'gu');

/** The token pattern of the original tokenizer, with Python's whitespace class. */
export const CLIP_TOKEN_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WHITESPACE}\\p{L}\\p{N}]+`,
  'giu',
);

const HTML_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;
const C1_CONTROL = /[\x80-\x9f]/g;
/** Windows-1252 for bytes 0x80-0x9f; ftfy's "sloppy" variant keeps the five undefined bytes as themselves. */
const WINDOWS_1252_C1 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const LIGATURES: Record<string, string> = {
  Ĳ: 'IJ',
  ĳ: 'ij',
  ŉ: 'ʼn',
  Ǳ: 'DZ',
  ǲ: 'Dz',
  ǳ: 'dz',
  Ǆ: 'DŽ',
  ǅ: 'Dž',
  ǆ: 'dž',
  Ǉ: 'LJ',
  ǈ: 'Lj',
  ǉ: 'lj',
  Ǌ: 'NJ',
  ǋ: 'Nj',
  ǌ: 'nj',
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
};
const LIGATURE_CHARS = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
const WIDTH_FORMS = /[\u3000\uff01-\uffef]/g;
const SINGLE_CURLY_QUOTE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_CURLY_QUOTE = /[\u201c-\u201f]/g;
const LINE_BREAKS = /\r\n|[\r\u2028\u2029\x85]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes start with ESC.
const ANSI_ESCAPE = /\x1b\[[\d;]*[a-zA-Z]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing these control characters is the point.
const CONTROL_CHARS = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

function unescapeEntity(entity: string): string {
  const decoded = decodeHTMLStrict(entity);
  if (entity.startsWith('&#')) return decoded.includes(';') ? entity : decoded;
  if (decoded !== entity) return decoded;
  // ftfy also reads upper-cased entity names ("&EACUTE;" -> "É") when the upper-case name is not an entity.
  const lower = entity.toLowerCase();
  if (entity === entity.toUpperCase() && lower !== entity) {
    const decodedLower = decodeHTMLStrict(lower);
    if (decodedLower !== lower) return decodedLower.toUpperCase();
  }
  return entity;
}

function fixCharacterWidth(char: string): string {
  // ftfy maps the ideographic space to a plain space and every other width form to its NFKC form.
  return char === '\u3000' ? ' ' : char.normalize('NFKC');
}

/** The deterministic part of ftfy 6's default `fix_text` (see the comment at the top of this file). */
export function fixText(input: string): string {
  // ftfy leaves entities alone when the text looks like HTML ("auto" mode).
  const unescapeEntities = !input.includes('<');
  let text = input;
  for (;;) {
    const before = text;
    if (unescapeEntities) text = text.replace(HTML_ENTITY, unescapeEntity);
    text = text
      .replace(C1_CONTROL, (char) => WINDOWS_1252_C1[char.charCodeAt(0) - 0x80]!)
      .replace(LIGATURE_CHARS, (char) => LIGATURES[char]!)
      .replace(WIDTH_FORMS, fixCharacterWidth)
      .replace(SINGLE_CURLY_QUOTE, "'")
      .replace(DOUBLE_CURLY_QUOTE, '"')
      .replace(LINE_BREAKS, '\n')
      .replace(LONE_SURROGATE, '\ufffd')
      .replace(ANSI_ESCAPE, '')
      .replace(CONTROL_CHARS, '')
      .normalize('NFC');
    if (text === before) return text;
  }
}

/** Full cleanup of the original tokenizer: fix_text, HTML unescape twice, strip, collapse whitespace, lowercase. */
export function cleanPrompt(text: string): string {
  const unescaped = decodeHTML(decodeHTML(fixText(text)));
  return unescaped.replace(EDGE_WHITESPACE, '').replace(WHITESPACE_RUN, ' ').toLowerCase();
}
