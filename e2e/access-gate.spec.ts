import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { E2E_ACCESS_TOKEN, GATED_APP_URL } from './support/ports';
import { allowConsoleErrors, expect, test, unique } from './support/fixtures';

async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

// The third server of playwright.config.ts runs with ACCESS_TOKEN set.
test.use({ baseURL: GATED_APP_URL });

test('a gated deployment asks for the access token before the chat, then keeps the session', async ({ chat, page }) => {
  const sessionPosts: (string | null)[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/v1/sessions')) sessionPosts.push(request.headers()['x-access-token'] ?? null);
  });
  await page.goto('/');
  const token = page.getByLabel('Access token');
  const continueButton = page.getByRole('button', { name: 'Continue' });
  await expect(token).toBeVisible();
  await expect(token).toHaveAttribute('type', 'password');
  await expect(token).toBeFocused();
  await expect(chat.input).toHaveCount(0);
  await expect(chat.sidebar).toHaveCount(0);
  // /access said the token is needed, so the first visit did not post a session that would be refused.
  expect(sessionPosts).toEqual([]);

  // Chromium logs the refused POST as a console error.
  allowConsoleErrors(page, /status of 401/);
  await token.fill('not-the-right-token-000');
  await continueButton.click();
  await expect(page.getByRole('alert')).toContainText('That access token is not valid');
  await expect(token).toHaveAttribute('aria-invalid', 'true');
  await expect(chat.input).toHaveCount(0);
  await page.screenshot({ path: `${__dirname}/artifacts/screenshots/access-gate-wrong-token.png` });

  await token.fill(E2E_ACCESS_TOKEN);
  await token.press('Enter');
  await expect(chat.input).toBeVisible();
  await expect(chat.input).toBeFocused();
  await expect(token).toHaveCount(0);
  expect(sessionPosts).toEqual(['not-the-right-token-000', E2E_ACCESS_TOKEN]);

  const prompt = unique('Hello behind the gate');
  await chat.ask(prompt);
  const answer = await chat.waitForAnswer();
  await expect(answer).toContainText('Hello behind the gate');

  // The token was only in the one request: not in the URL or storage. The cookie carries the session on.
  expect(page.url()).not.toContain(E2E_ACCESS_TOKEN);
  const stored = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));
  expect(stored).not.toContain(E2E_ACCESS_TOKEN);
  await page.reload();
  await expect(chat.input).toBeVisible();
  await expect(chat.userMessages).toContainText(prompt);
  await expect(page.getByLabel('Access token')).toHaveCount(0);
  expect(sessionPosts).toHaveLength(2);
});

test('erasing on a gated deployment says first that the new session needs the access token again, then asks for it', async ({ chat, page }) => {
  await page.goto('/');
  await page.getByLabel('Access token').fill(E2E_ACCESS_TOKEN);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(chat.input).toBeVisible();
  await page.getByRole('button', { name: 'Erase my data' }).click();
  const dialog = page.getByRole('dialog', { name: 'Erase your data?' });
  await expect(dialog).toContainText('This server asks for its access token to start that session');
  await dialog.getByRole('button', { name: 'Erase everything' }).click();
  await expect(page.getByLabel('Access token')).toBeVisible();
});

test('a browser that lost its session is shown the form again instead of failing requests', async ({ chat, page, context }) => {
  allowConsoleErrors(page, /status of 401/);
  // Claims a session from an earlier visit, but has no cookie: the API's 401 leads to a refused session creation.
  await context.addInitScript(() => localStorage.setItem('parley.session', '1'));
  await page.goto('/');
  await expect(page.getByLabel('Access token')).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);
  await page.getByLabel('Access token').fill(E2E_ACCESS_TOKEN);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(chat.input).toBeVisible();
  await expect(chat.sidebar).toBeVisible();
});

for (const theme of ['light', 'dark'] as const) {
  test(`the access form has no serious axe violations, with and without its error, ${theme} theme`, async ({ page }) => {
    allowConsoleErrors(page, /status of 401/);
    await page.emulateMedia({ colorScheme: theme });
    await page.goto('/');
    await expect(page.getByLabel('Access token')).toBeVisible();
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel('Access token').fill('not-the-right-token-000');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page.getByRole('alert')).toBeVisible();
    expect(await seriousViolations(page)).toEqual([]);
  });
}
