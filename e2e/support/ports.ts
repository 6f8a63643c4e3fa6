/** Fixed loopback ports of the e2e run (override when they clash with something else on the machine). */
export const FAKE_OPENAI_PORT = Number(process.env['E2E_FAKE_OPENAI_PORT'] ?? 4399);
export const APP_PORT = Number(process.env['E2E_APP_PORT'] ?? 4310);
export const OFFLINE_APP_PORT = Number(process.env['E2E_OFFLINE_APP_PORT'] ?? 4311);
/** A third instance with ACCESS_TOKEN set (e2e/access-gate.spec.ts). */
export const GATED_APP_PORT = Number(process.env['E2E_GATED_APP_PORT'] ?? 4312);
export const APP_URL = `http://127.0.0.1:${APP_PORT}`;
export const OFFLINE_APP_URL = `http://127.0.0.1:${OFFLINE_APP_PORT}`;
export const GATED_APP_URL = `http://127.0.0.1:${GATED_APP_PORT}`;
/** A fourth instance behind a (pretend) sign-in gateway: TRUSTED_IDENTITY_HEADER set (e2e/sign-in.spec.ts). */
export const IDENTITY_APP_PORT = Number(process.env['E2E_IDENTITY_APP_PORT'] ?? 4313);
export const IDENTITY_APP_URL = `http://127.0.0.1:${IDENTITY_APP_PORT}`;
export const IDENTITY_HEADER = 'X-Forwarded-Email';
/** The gated instance's shared secret (ACCESS_TOKEN needs at least 16 characters). */
export const E2E_ACCESS_TOKEN = 'e2e-access-token-0123456789';
