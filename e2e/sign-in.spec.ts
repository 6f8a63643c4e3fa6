import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { IDENTITY_APP_URL, IDENTITY_HEADER } from './support/ports';
import { allowConsoleErrors, expect, test, unique } from './support/fixtures';

// The fourth server of playwright.config.ts runs with TRUSTED_IDENTITY_HEADER set, as it would
// behind a sign-in gateway (oauth2-proxy and the like) that adds the header to every request.
test.use({ baseURL: IDENTITY_APP_URL });

test('without the sign-in gateway\'s identity the page says to sign in, not a string of errors', async ({ chat, page }) => {
  allowConsoleErrors(page, /status of 401/);
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Sign in to continue' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Reload' })).toBeVisible();
  await expect(chat.input).toHaveCount(0);
  await expect(page.locator('.toast')).toHaveCount(0);
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  expect(results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
  await page.screenshot({ path: join(__dirname, 'artifacts', 'screenshots', 'sign-in-required.png') });
});

test('with the identity the chat works as usual', async ({ chat, page }) => {
  await page.setExtraHTTPHeaders({ [IDENTITY_HEADER]: 'ada@example.org' });
  await chat.open();
  await expect(page.getByRole('heading', { name: 'Sign in to continue' })).toHaveCount(0);
  await chat.ask(unique('Hello from behind the gateway'));
  await chat.waitForAnswer();
  await expect(chat.lastAnswer()).toContainText('Hello from behind the gateway');
});
