import { numberedWords } from './support/fake-openai';
import { ChatPage, expect, heldAnswer, test, unique } from './support/fixtures';

test.describe('reload mid-answer', () => {
  test('re-attaches to the running stream with Last-Event-ID and shows every word exactly once', async ({ chat, page }) => {
    // The answer pauses after w08 until released: the reload comes back while it still runs, however slow.
    const held = heldAnswer();
    await chat.open();
    await chat.ask(`Count for me ${held.marker}`);
    await expect(chat.lastAnswer()).toContainText('w05');

    const resumed = page.waitForRequest((r) => /\/api\/v1\/chat\/streams\/[^/]+$/.test(r.url()) && r.method() === 'GET');
    await page.reload();
    const request = await resumed;
    expect(request.headers()['last-event-id']).toMatch(/^\d+$/);
    await held.release();

    const answer = await chat.waitForAnswer();
    const text = (await answer.locator('.markdown').innerText()).trim();
    expect(text).toBe(numberedWords(60));
    await page.reload();
    await expect(chat.lastAnswer().locator('.markdown')).toHaveText(numberedWords(60));
  });

  test('coming back to a conversation still answering resumes it', async ({ chat, page }) => {
    const held = heldAnswer();
    await chat.open();
    await chat.ask(`Count again ${held.marker}`);
    await expect(chat.lastAnswer()).toContainText('w03');
    const url = page.url();
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await expect(chat.answers).toHaveCount(0);
    await page.goto(url);
    await expect(chat.stop).toBeVisible();
    await held.release();
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

  test('a second tab brought back catches up: messages and an answer running from the first, a conversation deleted there', async ({ chat, page, context }) => {
    await chat.open();
    await chat.ask(unique('Shared conversation'));
    await chat.waitForAnswer();
    const url = page.url();
    const other = await context.newPage();
    const second = new ChatPage(other);
    // Headless Chromium sends no focus or visibility events between its pages: the one a window gets when
    // the user comes back to it is sent by hand.
    const comeBack = async (): Promise<void> => {
      await other.bringToFront();
      await other.evaluate(() => window.dispatchEvent(new FocusEvent('focus')));
    };
    await other.goto(url);
    await expect(second.answers).toHaveCount(1);

    const held = heldAnswer();
    await page.bringToFront();
    await chat.followUp(`Count from the first tab ${held.marker}`);
    await expect(chat.lastAnswer()).toContainText('w03');
    // Back in the second tab: the new message is there and the running answer is followed live.
    await comeBack();
    await expect(second.userMessages.last()).toContainText('Count from the first tab');
    await expect(second.lastAnswer()).toContainText('w05');
    await expect(second.stop).toBeVisible();
    await held.release();
    await expect(second.lastAnswer().locator('.markdown')).toHaveText(numberedWords(60));
    await second.waitForAnswer();

    await page.bringToFront();
    await chat.sidebar.getByRole('button', { name: /^Delete / }).first().click();
    await page.getByRole('dialog', { name: 'Delete conversation?' }).getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(page).toHaveURL(/\/$/);
    await comeBack();
    await expect(other.getByRole('heading', { name: 'Conversation not found', level: 2 })).toBeVisible();
    await expect(second.sidebar.getByRole('link')).toHaveCount(0);
    await other.close();
  });
});
