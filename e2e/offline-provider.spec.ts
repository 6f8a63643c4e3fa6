import { OFFLINE_APP_URL } from './support/ports';
import { expect, test } from './support/fixtures';

test.use({ baseURL: OFFLINE_APP_URL });

test('the offline demo provider is announced with how to configure a real model', async ({ chat, page }) => {
  await chat.open();
  const banner = page.getByRole('note').filter({ hasText: 'Demo mode' });
  await expect(banner).toContainText('OPENAI_API_KEY');
  await expect(banner).toContainText('OPENAI_BASE_URL');
  // The provider follows from those two; LLM_PROVIDER is only for forcing one.
  await expect(banner).not.toContainText('LLM_PROVIDER');
  await chat.ask('Hello demo');
  const answer = await chat.waitForAnswer();
  await expect(answer).toContainText('Offline demo mode');
  await expect(answer).toContainText('Hello demo');
  await expect(answer.locator('.msg-model')).toHaveText('parley-offline-demo');
  await page.screenshot({ path: `${__dirname}/artifacts/screenshots/desktop-demo-banner.png` });
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(chat.sidebar).toBeHidden();
  await expect(banner).toBeVisible();
  await page.screenshot({ path: `${__dirname}/artifacts/screenshots/phone-demo-banner.png` });
  // The note can be put away for the session; the model's name still says it is the demo.
  await banner.getByRole('button', { name: 'Hide the demo note' }).click();
  await expect(banner).toBeHidden();
  await page.reload();
  await expect(chat.lastAnswer()).toContainText('Hello demo');
  await expect(banner).toBeHidden();
  await expect(page.getByText(/^Answers by parley-offline-demo$/)).toBeVisible();
});
