import { readdirSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { NextFunction, Request, Response } from 'express';
import Negotiator from 'negotiator';

/** Hashed bundles never change; anything else (index.html first) must always be revalidated. */
export function assetCacheControl(path: string): string {
  return /\.[0-9a-z]{8,}\.(js|css|woff2?)$/i.test(path) || /-[A-Z0-9]{8}\.(js|css|woff2?|ttf)$/.test(path)
    ? 'public, max-age=31536000, immutable'
    : 'no-cache';
}

type Encoding = 'br' | 'gzip';
const SUFFIX: Record<Encoding, string> = { br: '.br', gzip: '.gz' };

/** Every file under `root` with its compressed copies (scripts/precompress.mjs), by URL path ("/main-X.js"). */
function compressedCopies(root: string): Map<string, Encoding[]> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) names.add(`/${relative(root, path).split(sep).join('/')}`);
    }
  };
  walk(root);
  const copies = new Map<string, Encoding[]>();
  for (const name of names) {
    const encodings = (['br', 'gzip'] as const).filter((e) => names.has(name + SUFFIX[e]));
    if (encodings.length > 0 && !name.endsWith('.br') && !name.endsWith('.gz')) copies.set(name, encodings);
  }
  return copies;
}

/**
 * Serves the SPA's files compressed where the build left a Brotli or gzip copy beside them and the browser takes
 * it (Accept-Encoding, with its q-values): the backend serving the SPA alone (README's quick start) sent ~880 KB of
 * JavaScript and CSS as is. Nothing is compressed per request (the event loop also carries every stream), and the
 * API is never touched: only the paths of files found at start have copies. Behind nginx, nginx sends the gzip copies (gzip_static).
 */
export function precompressedAssets(root: string): (req: Request, res: Response, next: NextFunction) => void {
  const copies = compressedCopies(root);
  return (req, res, next) => {
    const encodings = (req.method === 'GET' || req.method === 'HEAD') ? copies.get(req.path) : undefined;
    if (!encodings) {
      next();
      return;
    }
    // The answer depends on Accept-Encoding whichever copy is sent, the file as is included.
    res.vary('Accept-Encoding');
    // The browser's preference (q-values) first; among equals Brotli, the smaller (browsers list gzip first, at the same q).
    const [encoding] = new Negotiator(req).encodings([...encodings, 'identity'], { preferred: ['br', 'gzip', 'identity'] });
    if (encoding !== 'br' && encoding !== 'gzip') {
      next();
      return;
    }
    // Typed as the file it holds; sendFile keeps a Content-Type already set.
    res.type(extname(req.path));
    res.setHeader('Content-Encoding', encoding);
    res.sendFile(join(root, req.path) + SUFFIX[encoding], { cacheControl: false, headers: { 'Cache-Control': assetCacheControl(req.path) } }, (err?: Error) => {
      if (!err) return;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Not servable as the copy (a Range past its end, the copy gone since the start): the file as is answers,
      // its 416 included, as ServeStatic answers it. An error here would reach the body parser's error handler.
      res.removeHeader('Content-Encoding');
      res.removeHeader('Content-Type');
      next();
    });
  };
}
