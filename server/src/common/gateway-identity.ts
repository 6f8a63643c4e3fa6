import type { AppRequest } from './request-context.js';

type TrustFn = (address: string, hop: number) => boolean;

/**
 * The person the gateway signed in (TRUSTED_IDENTITY_HEADER), when the deployment has one. With TRUST_PROXY set, only a
 * request whose connection comes from the gateway it names carries one: the header from anyone else who reaches the
 * backend directly (its port published by mistake, the default HOST 0.0.0.0) counts as absent, so it no longer signs
 * in whoever it names. Without TRUST_PROXY the backend cannot tell the gateway from others, and only the deployment
 * (backends reachable only through the gateway) protects the header, as the README says.
 */
export function gatewayIdentity(req: AppRequest, header: string | undefined): string | undefined {
  if (!header || !isFromGateway(req)) return undefined;
  const value = req.headers[header];
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function isFromGateway(req: AppRequest): boolean {
  const app = (req as Partial<AppRequest>).app;
  if (app?.get('trust proxy') === false) return true;
  const isTrusted = app?.get('trust proxy fn') as TrustFn | undefined;
  const peer = req.socket?.remoteAddress;
  return isTrusted !== undefined && peer !== undefined && isTrusted(peer, 0);
}
