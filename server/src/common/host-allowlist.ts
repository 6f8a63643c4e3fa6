import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { ErrorCode } from './error-code.js';
import type { AppRequest } from './request-context.js';
import { errorEnvelope, writeError } from './write-error.js';

/**
 * The host names the app answers to. A page on any other name is refused before anything runs:
 * DNS rebinding (a site the user visits points its own name at 127.0.0.1 or a LAN address, and its
 * script, same-origin with that name, reaches this server) would otherwise let any web page create
 * sessions here and spend the instance's model key. A rebound name is a name, never an address, so
 * IP addresses are always served (health probes, a LAN address typed in a browser), and so are
 * `localhost` and its subdomains; other names are PUBLIC_URL's and those in ALLOWED_HOSTS
 * (`name`, `.example.com` for it and its subdomains, `*` for any).
 */
export class HostAllowlist {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];
  private readonly isOpen: boolean;

  constructor(entries: readonly string[]) {
    this.isOpen = entries.includes('*');
    for (const raw of entries) {
      const entry = raw.toLowerCase().replace(/\.$/, '');
      if (entry.startsWith('.')) this.suffixes.push(entry);
      else this.exact.add(entry);
    }
  }

  /** `host` as a Host header gives it (a name or address, with or without a port). */
  allows(host: string): boolean {
    if (this.isOpen) return true;
    const name = hostName(host);
    if (name === undefined) return false;
    if (isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost')) return true;
    return this.exact.has(name) || this.suffixes.some((s) => name.endsWith(s) || name === s.slice(1));
  }
}

/** The name or address of a Host header, lower case, without port, brackets or a trailing dot; undefined when malformed. */
export function hostName(host: string): string | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::\d{1,5})?$/i.exec(host.trim());
  if (!m) return undefined;
  return (m[1] ?? m[2]).toLowerCase().replace(/\.$/, '');
}

/** Refuses a request for a host name the app does not serve (HostAllowlist), with the error envelope. */
export function hostAllowlistMiddleware(
  allowlist: HostAllowlist, isExempt: (path: string) => boolean,
): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    // Health probes and a metrics scrape that needs its token arrive under internal names.
    if (isExempt(req.path)) {
      next();
      return;
    }
    // The Host header, and the forwarded one a trusted gateway gives (which Express reads): both must be served.
    const raw = req.headers.host;
    const forwarded = req.host;
    if ((raw === undefined || allowlist.allows(raw)) && (forwarded === undefined || forwarded === raw || allowlist.allows(forwarded))) {
      next();
      return;
    }
    writeError(res, 403, errorEnvelope(ErrorCode.Forbidden,
      'This host name is not served here: add it to ALLOWED_HOSTS, or set PUBLIC_URL to the address users open', (req as AppRequest).id));
  };
}

/** How many Host lines the request has (Node keeps the first in `headers.host` and drops the others). */
function hostLines(req: Request): number {
  let count = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') count++;
  return count;
}

/**
 * An HTTP/1.1 request without a Host header, or with more than one, is refused (RFC 9112 §3.2: a server MUST answer
 * 400) with the error envelope and the headers of every response. Node's parser refused a missing one with a bare
 * status line before any middleware ran; configureHttp turns that check off (`requireHostHeader`) so that this one
 * answers. A second Host was served: the host allowlist judged the first, and whatever reads the last (a cache, a
 * proxy in front) may see another name. HTTP/1.0 has no Host to require. The connection is closed after it, as
 * Node did.
 */
export function hostHeaderGuard(req: Request, res: Response, next: NextFunction): void {
  const isHttp11 = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
  const lines = req.headers.host === undefined ? 0 : hostLines(req);
  if (lines === 1 || (lines === 0 && !isHttp11)) {
    next();
    return;
  }
  const message = lines === 0 ? 'An HTTP/1.1 request needs a Host header' : `A request has one Host header (this one has ${lines})`;
  writeError(res, 400, errorEnvelope(ErrorCode.ValidationError, message, (req as AppRequest).id), { Connection: 'close' });
}
