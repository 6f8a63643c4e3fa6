import { numberedWords } from './support/fake-openai';
import { expect, test } from './support/fixtures';

test.describe('reload mid-answer', () => {
  test('re-attaches to the running stream with Last-Event-ID and shows every word exactly once', async ({ chat, page }) => {
    await chat.open();
    await chat.ask('Count for me [slow]');
    await expect(chat.lastAnswer()).toContainText('w05');

    const resumed = page.waitForRequest((r) => /\/api\/v1\/chat\/streams\/[^/]+$/.test(r.url()) && r.method() === 'GET');
    await page.reload();
    const request = await resumed;
    expect(request.headers()['last-event-id']).toMatch(/^\d+$/);

    const answer = await chat.waitForAnswer();
    const text = (await answer.locator('.markdown').innerText()).trim();
    expect(text).toBe(numberedWords(60));
    await page.reload();
    await expect(chat.lastAnswer().locator('.markdown')).toHaveText(numberedWords(60));
  });

  test('coming back to a conversation still answering resumes it', async ({ chat, page }) => {
    await chat.open();
    await chat.ask('Count again [slow]');
    await expect(chat.lastAnswer()).toContainText('w03');
    const url = page.url();
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await expect(chat.answers).toHaveCount(0);
    await page.goto(url);
    const answer = await chat.waitForAnswer();
    await expect(answer.locator('.markdown')).toHaveText(numberedWords(60));
  });

  test('a connection cut mid-answer resumes after the last event seen, without repeating words', async ({ chat, page }) => {
    // Let the first 12 events through, then end the body as a dropped connection would.
    await page.route('**/api/v1/chat', async (route) => {
      const response = await route.fetch();
      const events = (await response.text()).split('\n\n').filter((e) => e.trim() !== '');
      await route.fulfill({ response, body: events.slice(0, 12).join('\n\n') + '\n\n' });
    });
    await chat.open();
    const resumed = page.waitForRequest((r) => /\/api\/v1\/chat\/streams\/[^/]+$/.test(r.url()));
    await chat.ask('Count quickly [quick-count]');
    expect((await resumed).headers()['last-event-id']).toBe('11');
    const answer = await chat.waitForAnswer();
    await expect(answer.locator('.markdown')).toHaveText(numberedWords(60));
  });
});
