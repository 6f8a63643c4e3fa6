/** Fixed loopback ports of the e2e run (override when they clash with something else on the machine). */
export const FAKE_OPENAI_PORT = Number(process.env['E2E_FAKE_OPENAI_PORT'] ?? 4399);
export const APP_PORT = Number(process.env['E2E_APP_PORT'] ?? 4310);
export const OFFLINE_APP_PORT = Number(process.env['E2E_OFFLINE_APP_PORT'] ?? 4311);
export const APP_URL = `http://127.0.0.1:${APP_PORT}`;
export const OFFLINE_APP_URL = `http://127.0.0.1:${OFFLINE_APP_PORT}`;
