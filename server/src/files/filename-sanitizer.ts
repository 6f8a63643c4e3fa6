/** Longest filename kept, in code points (the column holds 255; room is left for odd encodings). */
export const MAX_FILENAME_LENGTH = 200;

// C0 and C1 controls and DEL; bidi embeddings, overrides and isolates (which can make
// "evil\u202Etxt.exe" read as "evilexe.txt"); zero-width characters and the BOM.
// eslint-disable-next-line no-control-regex -- removing control characters is the point
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]/g;
// Separators and the characters Windows refuses in names, since the name is offered on download.
const RESERVED = /[/\\:*?"<>|]/g;

/**
 * The original name reduced to safe display metadata. It is never used as a path (stored
 * objects are named by session and hash), but it is shown in the SPA and sent back in
 * Content-Disposition, so it must not carry separators, controls or direction tricks.
 */
export function sanitizeFilename(raw: string): string {
  // Old browsers send a full client path; only its last segment is the name.
  const last = raw.split(/[/\\]/).pop() ?? '';
  let name = last.normalize('NFC').replace(INVISIBLE, '').replace(RESERVED, '_').trim();
  // Leading dots would hide the file on Unix, trailing dots and spaces vanish on Windows.
  name = name.replace(/^\.+/, '').replace(/[. ]+$/, '');
  const points = Array.from(name);
  if (points.length > MAX_FILENAME_LENGTH) {
    const ext = fileExtension(name);
    const keep = MAX_FILENAME_LENGTH - Array.from(ext).length;
    name = points.slice(0, Math.max(1, keep)).join('').trimEnd() + ext;
  }
  return name.length > 0 ? name : 'file';
}

/** The lower-case extension with its dot (".pdf"), or '' when the name has none we could store. */
export function fileExtension(name: string): string {
  const match = /\.([A-Za-z0-9]{1,10})$/.exec(name);
  return match?.[1] ? `.${match[1].toLowerCase()}` : '';
}

/**
 * An RFC 6266 attachment header: a quoted ASCII fallback for old clients and the exact
 * name as RFC 8187 `filename*` (UTF-8, percent-encoded).
 */
export function attachmentDisposition(filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
