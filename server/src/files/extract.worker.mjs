// @ts-check
/**
 * Text extraction for one uploaded file, run in a child process by extraction-children.ts on the
 * extraction host's thread (forked with IPC and advanced serialization, under SCHED_IDLE where chrt
 * is found, else niced to 19, heap-capped by --max-old-space-size, its RSS watched and the whole
 * process killed at the deadline).
 *
 * A process rather than a worker thread so that the OS can give it a lower priority: on a
 * 2-core machine a worker thread at normal priority takes a full core for seconds and starves
 * the event loop of the streams; a niced process only gets the CPU the server leaves idle.
 *
 * Plain JavaScript on purpose: node cannot load TypeScript, and this one file must run both from
 * dist/server/files/ (copied there by the build:server script) and from the sources under
 * Vitest. Everything that parses untrusted bytes lives here, so a hostile or huge upload costs
 * this process (capped in time and memory by the parent) and never the event loop.
 *
 * Input (an IPC message): { bytes: Uint8Array, fileType: '.pdf' | '.txt' | …, maxPages, maxChars, again? }.
 * Output (an IPC message): { ok: true, text, pages, truncated, tokenCount, again }
 *                       or { ok: false, kind: 'unsupported' | 'processing', message, again }.
 * A PDF is the process's only job: it exits after answering. A text file's job may ask to stay
 * (`again`): the process then waits for the next text file, and `again` in its answer says it
 * does. It never stays after an error it did not expect, nor for a PDF (pdf.js keeps caches and
 * workers' state between documents; a hostile PDF must not meet the next one).
 */
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import iconv from 'iconv-lite';

/** @typedef {{ bytes: Uint8Array; fileType: string; maxPages: number; maxChars: number; again?: boolean }} Job */

class Refusal extends Error {
  /** @param {'unsupported' | 'processing'} kind @param {string} message */
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** Languages of the fenced blocks that wrap code files (document 9.2). */
const CODE_LANGUAGES = /** @type {Record<string, string>} */ ({
  '.py': 'python',
  '.js': 'javascript',
  '.json': 'json',
});

/**
 * The text of a file, its line ends made LF: UTF-8 without NUL bytes, or UTF-16 that says so with its
 * byte order mark (Windows Notepad's "Unicode"), or, when not UTF-8, Western text in windows-1252 ("ANSI");
 * or a refusal: a binary renamed to .txt is not text.
 * @param {Uint8Array} bytes
 */
function decodeText(bytes) {
  const utf16 = bytes[0] === 0xff && bytes[1] === 0xfe ? 'utf-16le' : bytes[0] === 0xfe && bytes[1] === 0xff ? 'utf-16be' : null;
  if (utf16) {
    let text;
    try {
      text = new TextDecoder(utf16, { fatal: true }).decode(bytes);
    } catch {
      throw new Refusal('unsupported', 'The file is not valid UTF-16 text');
    }
    if (text.includes('\u0000')) throw new Refusal('unsupported', 'The file is not a text file (it contains NUL characters)');
    return text.replace(/\r\n?/g, '\n');
  }
  if (bytes.includes(0)) throw new Refusal('unsupported', 'The file is not a text file (it contains NUL bytes)');
  const lf = unixNewlines(bytes);
  try {
    // ignoreBOM false: a leading BOM is dropped from the text.
    return new TextDecoder('utf-8', { fatal: true }).decode(lf);
  } catch {
    // Not TextDecoder: Node 20's reads windows-1252 as ISO-8859-1 (0x80–0x9F as C1 controls, not € “ ” – …).
    if (isWindows1252Text(lf)) return iconv.decode(Buffer.from(lf.buffer, lf.byteOffset, lf.byteLength), 'windows-1252');
    throw new Refusal('unsupported', 'The file is not valid UTF-8 text (save it as UTF-8 and upload it again)');
  }
}

/** Bytes that are no character of windows-1252 (0x81, 0x8D, 0x8F, 0x90, 0x9D), or a control character other than tab, LF, FF and CR. */
const NOT_IN_1252_TEXT = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d, 0x7f, ...Array.from({ length: 32 }, (_, b) => b).filter((b) => ![9, 10, 12, 13].includes(b))]);
/** At most this share of a Western text's bytes are past ASCII (accented letters, quotes): French ~3 %; Korean in EUC-KR ~80 %. */
const MAX_HIGH_SHARE_1252 = 0.4;

/**
 * Whether bytes that are not UTF-8 read as Windows' "ANSI" text (windows-1252, of which Latin-1 is a part: what
 * Notepad, Excel's CSV and older editors wrote in Western Europe and the Americas): every byte a printable character
 * there, and mostly ASCII, as Western text is. A binary has control bytes; text in another legacy encoding (Shift_JIS,
 * GBK, EUC-KR) has bytes undefined there or is mostly past ASCII: those are still refused, not read as mojibake.
 * @param {Uint8Array} bytes
 */
function isWindows1252Text(bytes) {
  let high = 0;
  for (const b of bytes) {
    if (NOT_IN_1252_TEXT.has(b)) return false;
    if (b >= 0x80) high++;
  }
  return high <= bytes.length * MAX_HIGH_SHARE_1252;
}

/**
 * Wraps code in a fence longer than any backtick run inside it, so the code cannot close it.
 * @param {string} code @param {string} language
 */
function fence(code, language) {
  // A loop, not Math.max(...runs): a file of a million backtick runs overflowed the call's arguments.
  let longest = 0;
  for (const m of code.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  const ticks = '`'.repeat(Math.max(3, longest + 1));
  return `${ticks}${language}\n${code}${code.endsWith('\n') ? '' : '\n'}${ticks}`;
}

/**
 * Cuts text to maxChars (never inside a surrogate pair) and says so visibly.
 * @param {string} text @param {number} maxChars
 */
function cap(text, maxChars) {
  if (text.length <= maxChars) return { text, truncated: false };
  let end = maxChars;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return { text: `${text.slice(0, end)}\n[… truncated: the file's text is longer than ${maxChars} characters …]`, truncated: true };
}

/**
 * Deeper than this, a JSON file is refused. No data nests anywhere near it (and Python's json
 * module, for one, cannot read ~1,000 levels), so it is a crafted file, not context for a model.
 * The file was re-serialised before, whose recursion overflowed the stack somewhere past 10,000
 * levels: 40,000 were refused by accident (422), fewer were pretty-printed into megabytes of indent.
 */
const JSON_MAX_DEPTH = 1000;

/**
 * How deep the arrays and objects of a JSON text nest, counted without parsing it (brackets
 * inside strings do not count), stopping as soon as it passes `limit`. Linear, no allocation.
 * @param {string} text @param {number} limit
 */
function jsonDepthExceeds(text, limit) {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash: the next character is escaped, a quote included
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * A JSON file is checked, not rewritten: the model gets the file's own text. Re-serialising what
 * JSON.parse built changed the data: integers past 2^53 rounded (12345678901234567890 became
 * 12345678901234567000), 1e400 became null, 1.10 became 1.1, and of duplicate keys only the last
 * was kept. JSON.parse (iterative in V8, and the worker's heap cap bounds what it builds) only
 * decides whether the file is JSON.
 * @param {string} text
 */
function assertJson(text) {
  if (jsonDepthExceeds(text, JSON_MAX_DEPTH)) {
    throw new Refusal('processing', `The JSON file is nested deeper than ${JSON_MAX_DEPTH} levels`);
  }
  try {
    JSON.parse(text);
  } catch (err) {
    throw new Refusal('unsupported', `The file is not valid JSON (${err instanceof Error ? err.message : 'parse error'})`);
  }
}

/**
 * CRLF and lone CR as LF, in place, on the bytes (neither byte occurs inside a UTF-8 sequence). On
 * the decoded text, replace(/\r\n?/g) over 10 MiB of CRs took 1.4 s and ~400 MB, and the file was
 * refused as needing more than the memory limit.
 * @param {Uint8Array} bytes
 */
function unixNewlines(bytes) {
  let at = bytes.indexOf(13);
  if (at === -1) return bytes;
  let out = at;
  for (; at < bytes.length; at++) {
    const b = bytes[at];
    if (b !== 13) bytes[out++] = b;
    else {
      bytes[out++] = 10;
      if (bytes[at + 1] === 10) at++;
    }
  }
  return bytes.subarray(0, out);
}

/** @param {Job} job */
function extractPlain(job) {
  const text = withoutHiddenTags(decodeText(job.bytes));
  if (job.fileType === '.json') assertJson(text);
  const { text: capped, truncated } = cap(text, job.maxChars);
  const language = CODE_LANGUAGES[job.fileType];
  return { text: language ? fence(capped, language) : capped, pages: null, truncated };
}

/** @param {Job} job */
async function extractPdf(job) {
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  const root = dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json'));
  const task = pdfjs.getDocument({
    data: job.bytes,
    // Never compile strings from the file into functions (the class of CVE-2024-4367).
    isEvalSupported: false,
    useSystemFonts: false,
    disableFontFace: true,
    stopAtErrors: true,
    verbosity: 0,
    cMapUrl: join(root, 'cmaps') + '/',
    cMapPacked: true,
    standardFontDataUrl: join(root, 'standard_fonts') + '/',
  });
  /** @type {import('pdfjs-dist').PDFDocumentProxy} */
  let doc;
  try {
    doc = await task.promise;
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    if (name === 'PasswordException') throw new Refusal('processing', 'The PDF is encrypted (password-protected); upload an unprotected copy');
    throw new Refusal('processing', 'The PDF could not be read (it is damaged or not a PDF)');
  }
  const pages = doc.numPages;
  if (pages > job.maxPages) {
    await doc.destroy();
    throw new Refusal('processing', `The PDF has ${pages} pages; at most ${job.maxPages} are accepted`);
  }
  /** @type {string[]} */
  const parts = [];
  let length = 0;
  try {
    for (let n = 1; n <= pages && length <= job.maxChars; n++) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent();
      let pageText = '';
      for (const item of content.items) {
        if ('str' in item) pageText += item.str + (item.hasEOL ? '\n' : '');
      }
      page.cleanup();
      // A PDF's strings may hold NUL (U+0000): no use as text, and PostgreSQL cannot store it.
      parts.push(withoutHiddenTags(pageText.replaceAll('\u0000', '')).trim());
      length += pageText.length + 2;
    }
  } catch {
    throw new Refusal('processing', 'The PDF could not be read (a page is damaged)');
  } finally {
    await doc.destroy();
  }
  // Scanned pages are images: nothing for the model, and attached it answered "no file content reached me".
  if (parts.every((part) => part === '')) throw new Refusal('processing', 'The PDF has no text to read (scanned pages are images, which are not read)');
  const { text, truncated } = cap(parts.join('\n\n'), job.maxChars);
  return { text, pages, truncated };
}

// Token counting: a copy of linearPieces and what it uses in chat/token-count.ts, which says why; kept in step
// by hand since this file cannot import TypeScript. extract.worker.spec.ts holds the two counts equal.

/** Stretches of text at least this long without a cut point (see CUT_POINT) are split into slices of half of it. */
const LONG_RUN = 256;

/**
 * Where o200k's pre-tokenizer always starts a new piece: before a space (not CR or LF) followed by a
 * non-space, and after CR or LF followed by a non-space other than "/".
 */
const CUT_POINT = /(?=[^\S\r\n]\S)|(?<=[\r\n])(?=[^\s/])/g;

/**
 * Whether a cut at `at` would split a surrogate pair: a lone half counts as U+FFFD.
 * @param {string} text @param {number} at
 */
function splitsPair(text, at) {
  const code = text.charCodeAt(at - 1);
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * Slices of `text` from `from` to `to` of at most LONG_RUN / 2 characters, never splitting a surrogate pair.
 * @param {string} text @param {number} from @param {number} to
 */
function* slices(text, from, to) {
  while (from < to) {
    let end = Math.min(to, from + LONG_RUN / 2);
    if (end < to && splitsPair(text, end)) end -= 1;
    yield text.slice(from, end);
    from = end;
  }
}

/**
 * Text in pieces that BPE (quadratic in one pre-tokenized piece) handles in linear time: a stretch of
 * LONG_RUN or more without a cut point ("x" + 100,000 U+3000 or 300 KB of newlines ran past the 30 s
 * deadline) is cut in slices; other text stays whole and counts exactly.
 * @param {string} text
 */
function* linearPieces(text) {
  let last = 0; // the end of what has been yielded
  let stretch = 0; // the start of the stretch since the last cut point
  for (const end of cutPoints(text)) {
    if (end - stretch >= LONG_RUN) {
      if (stretch > last) yield text.slice(last, stretch);
      yield* slices(text, stretch, end);
      last = end;
    }
    stretch = end;
  }
  if (last < text.length) yield text.slice(last);
}

/**
 * The cut points of `text`, then its end.
 * @param {string} text
 */
function* cutPoints(text) {
  for (const match of text.matchAll(CUT_POINT)) yield match.index ?? 0;
  yield text.length;
}

/**
 * The token count of o200k_base, as the chat counts ("<|endoftext|>" in a file is plain text).
 * @param {string} text
 * @param {(text: string, options: { disallowedSpecial: Set<string> }) => number} count
 */
function countTokensLinear(text, count) {
  const options = { disallowedSpecial: new Set() };
  let total = 0;
  for (const piece of linearPieces(text)) total += count(piece, options);
  return total;
}

/**
 * Sends the reply, then exits once it is written (process.send is asynchronous) unless the process
 * stays for another text file.
 * @param {object} reply @param {boolean} again
 */
function reply(reply, again) {
  if (!process.send) process.exit(2);
  process.send({ ...reply, again }, () => {
    if (!again) process.exit(0);
  });
}

/**
 * Unicode tag characters out, flags made of them kept: a copy of common/hidden-tags.ts, which says why (a file
 * could carry an instruction the model reads and its reader never sees).
 */
const TAGS = /(\u{1F3F4}[\u{E0030}-\u{E0039}\u{E0061}-\u{E007A}]{2,7}\u{E007F})|[\u{E0000}-\u{E007F}]/gu;
const HAS_TAG = /[\u{E0000}-\u{E007F}]/u;

/**
 * The text without tag characters, flags kept; before the text is cut to its cap (tags counted there would cut
 * a file padded with them short of its real content).
 * @param {string} text
 */
function withoutHiddenTags(text) {
  return HAS_TAG.test(text) ? text.replace(TAGS, (_tag, flag) => flag ?? '') : text;
}

/** @param {Job} job */
async function main(job) {
  const again = job.again === true && job.fileType !== '.pdf';
  try {
    const result = job.fileType === '.pdf' ? await extractPdf(job) : extractPlain(job);
    const { countTokens } = await tokenizer;
    reply({ ok: true, ...result, tokenCount: countTokensLinear(result.text, countTokens) }, again);
  } catch (err) {
    if (err instanceof Refusal) {
      reply({ ok: false, kind: err.kind, message: err.message }, again);
    } else {
      reply({ ok: false, kind: 'processing', message: 'The file could not be processed' }, false);
    }
  }
}

if (!process.send) {
  console.error('extract.worker.mjs runs as a child process of the server (child_process.fork)');
  process.exit(2);
}
// The parent gone (crashed, killed): nobody waits for the result.
process.on('disconnect', () => process.exit(1));
// Loaded while the job is on its way, or while a process started in advance waits for one (its
// tables take most of a text file's time here: ~0.4 s of CPU).
const tokenizer = import('gpt-tokenizer');
tokenizer.catch(() => undefined);
// One job at a time: the parent sends the next only after this one's answer.
process.on('message', (job) => void main(/** @type {Job} */ (job)));
