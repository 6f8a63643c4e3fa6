import { allowConsoleErrors, expect, test, unique } from './support/fixtures';

test.describe('errors', () => {
  test('rate limit: a toast says when to retry and the draft is kept', async ({ chat, page }) => {
    allowConsoleErrors(page, /status of 429/);
    await chat.open();
    await page.route('**/api/v1/chat', (route) => route.fulfill({
      status: 429,
      headers: { 'Retry-After': '37' },
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Rate limit exceeded.', details: { retry_after_seconds: 37 }, timestamp: new Date().toISOString(), request_id: 'r1' } }),
    }));
    await chat.input.fill('Too fast');
    await chat.input.press('Enter');
    await expect(page.getByRole('alert').filter({ hasText: 'sending messages too quickly' })).toContainText('Try again in 37 s.');
    await expect(chat.input).toHaveValue('Too fast');
    await expect(chat.userMessages).toHaveCount(0);
  });

  test('without the Markdown engine (its chunk could not be fetched) the chat still works, answers shown as their text', async ({ chat, page }) => {
    allowConsoleErrors(page, /ERR_FAILED|dynamically imported module/);
    let refused = 0;
    // The engine's code (marked, DOMPurify) is a lazy chunk: refused, wherever the build put it.
    await page.route('**/chunk-*.js', async (route) => {
      const response = await route.fetch();
      const body = await response.text();
      if (body.includes('DOMPurify')) {
        refused++;
        await route.abort();
        return;
      }
      await route.fulfill({ response, body });
    });
    await chat.open();
    const prompt = unique('Say **bold** and `code`');
    await chat.ask(prompt);
    const answer = await chat.waitForAnswer();
    await expect(answer).toContainText(`Hello! You said: ${prompt}`);
    await expect(answer.locator('strong, code')).toHaveCount(0);
    expect(refused).toBeGreaterThan(0);
  });

  test('upstream failure: an inline notice with Retry that works', async ({ chat, page }) => {
    await chat.open();
    const prompt = unique('Please answer [fail-once]');
    await chat.ask(prompt);
    const answer = await chat.waitForAnswer('failed');
    const notice = answer.getByRole('alert');
    await expect(notice).toBeVisible();
    await page.screenshot({ path: `${__dirname}/artifacts/screenshots/desktop-upstream-error.png` });
    await notice.getByRole('button', { name: 'Retry' }).click();
    await chat.waitForAnswer('complete');
    await expect(chat.lastAnswer()).toContainText(`Hello! You said: ${prompt}`);
    await expect(page.getByRole('alert')).toHaveCount(0);
  });

  test('a prompt the model refuses as over its context says so (not "try again in a moment"), live and after a reload', async ({ chat, page }) => {
    await chat.open();
    await chat.ask(unique('A question the model finds too long [over-context]'));
    const words = 'This is more than the model can read at once. Send a shorter message or smaller files; in a long conversation, starting a new one also helps.';
    await expect((await chat.waitForAnswer('failed')).getByRole('alert').locator(':scope > span')).toHaveText(words);
    await page.reload();
    const failed = await chat.waitForAnswer('failed');
    await expect(failed.locator('.notice-error > span')).toHaveText(words);
    // The same question would be refused the same: no Retry. The conversation goes on without it.
    await expect(failed.getByRole('button', { name: 'Retry' })).toHaveCount(0);
    const next = unique('And a short one');
    await chat.followUp(next);
    await chat.waitForAnswer('complete');
    await expect(chat.lastAnswer()).toContainText(`You said: ${next}`);
  });

  test('a failed answer reads the same after a reload, where it is history and no longer an alert', async ({ chat, page }) => {
    await chat.open();
    await chat.ask(unique('Please answer [fail]'));
    const live = (await chat.waitForAnswer('failed')).getByRole('alert').locator(':scope > span');
    await expect(live).toHaveText('I\'m temporarily unable to process your request. Please try again in a moment.');
    const words = await live.textContent();
    await page.reload();
    // It read "The model could not answer." (the stored code was not read), and was announced again at each opening.
    await expect((await chat.waitForAnswer('failed')).locator('.notice-error > span')).toHaveText(words ?? '');
    await expect(page.getByRole('alert')).toHaveCount(0);
  });

  test('a conversation that cannot be loaded says so in place of its history, and loads by itself once the server answers', async ({ chat, page }) => {
    allowConsoleErrors(page, /Failed to load resource|net::ERR_FAILED|Failed to fetch/);
    await chat.open();
    await chat.ask(unique('Kept history'));
    await chat.waitForAnswer();
    const id = page.url().split('/c/')[1];
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    // The server is unreachable for this conversation's page.
    const detail = `**/api/v1/conversations/${id}?*`;
    await page.route(detail, (route) => route.abort('failed'));
    await chat.sidebar.getByRole('link', { name: /Kept history/ }).click();
    const notice = page.getByRole('alert').filter({ hasText: 'This conversation could not be loaded' });
    await expect(notice).toBeVisible();
    await expect(notice).toContainText('cannot be reached');
    // Nothing to send into a conversation whose history is not shown.
    await expect(chat.input).toBeHidden();
    await page.unroute(detail);
    // Retried by itself (2 s after the failure).
    await expect(chat.userMessages.first()).toContainText('Kept history');
    await expect(notice).toBeHidden();
    await expect(chat.input).toBeVisible();
  });

  test('offline: a banner, and a friendly toast when sending fails', async ({ chat, page, context }) => {
    allowConsoleErrors(page, /ERR_INTERNET_DISCONNECTED|Failed to fetch/);
    await chat.open();
    await context.setOffline(true);
    await expect(page.getByText('You are offline.')).toBeVisible();
    await chat.input.fill('Anyone there?');
    await chat.input.press('Enter');
    await expect(page.getByRole('alert').filter({ hasText: 'appear to be offline' })).toBeVisible();
    await page.screenshot({ path: `${__dirname}/artifacts/screenshots/desktop-offline.png` });
    await expect(chat.input).toHaveValue('Anyone there?');
    await context.setOffline(false);
    await expect(page.getByText('You are offline.')).toBeHidden();
    await chat.input.press('Enter');
    await chat.waitForAnswer();
  });
});
