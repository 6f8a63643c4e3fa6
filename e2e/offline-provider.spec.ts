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
  // Its button went with it: the keyboard is in the message box, not on the page's body.
  await expect(chat.input).toBeFocused();
  await page.reload();
  await expect(chat.lastAnswer()).toContainText('Hello demo');
  await expect(banner).toBeHidden();
  await expect(page.getByText(/^Answers by parley-offline-demo$/)).toBeVisible();
});

test('editing a long question read to its end shows the edit box from its top', async ({ chat, page }) => {
  // The demo's answer quotes the question: with the note above, the page after the edit is a little taller than the
  // screen (the case that left the box's top out of view).
  await page.setViewportSize({ width: 1280, height: 800 });
  await chat.open();
  await chat.ask('The quick brown fox jumps over the lazy dog. '.repeat(700).slice(0, 30_000));
  await chat.waitForAnswer();
  const question = chat.userMessages.last();
  // Read whole: unfolded, and scrolled to its end, where its Edit button is.
  await question.getByRole('button', { name: 'Show more' }).click();
  await question.getByRole('button', { name: 'Show less' }).scrollIntoViewIfNeeded();
  await question.hover();
  await question.getByRole('button', { name: 'Edit message' }).click();
  await expect(page.getByRole('textbox', { name: 'Edit your message' })).toBeFocused();
  const form = await page.locator('form.msg-edit').boundingBox();
  const scroller = await page.locator('.scroller').boundingBox();
  expect(form).not.toBeNull();
  expect(scroller).not.toBeNull();
  expect(form!.y).toBeGreaterThanOrEqual(scroller!.y - 1);
  expect(form!.y + form!.height).toBeLessThanOrEqual(scroller!.y + scroller!.height + 1);
});
