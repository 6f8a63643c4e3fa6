import { readFileSync } from 'node:fs';
import { allowConsoleErrors, expect, heldAnswer, test, unique } from './support/fixtures';

test.describe('conversations sidebar', () => {
  test('new chat, switch, back/forward, rename inline and delete with confirmation', async ({ chat, page }) => {
    await chat.open();
    await chat.ask('Alpha topic');
    await chat.waitForAnswer();
    const alphaUrl = page.url();

    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await expect(page).toHaveURL(/\/$/);
    await expect(chat.answers).toHaveCount(0);
    await chat.ask('Beta topic');
    await chat.waitForAnswer();
    const betaUrl = page.url();

    // Newest first.
    const links = chat.sidebar.getByRole('link');
    await expect(links).toHaveCount(2);
    await expect(links.first()).toContainText('Beta topic');
    await expect(links.nth(1)).toContainText('Alpha topic');

    // Switch, then back and forward.
    await links.nth(1).click();
    await expect(page).toHaveURL(alphaUrl);
    await expect(chat.userMessages).toHaveText(['Alpha topic']);
    await page.goBack();
    await expect(page).toHaveURL(betaUrl);
    await expect(chat.userMessages).toHaveText(['Beta topic']);
    await page.goForward();
    await expect(chat.userMessages).toHaveText(['Alpha topic']);

    // Rename inline: Enter saves, Escape cancels.
    await chat.sidebar.getByRole('button', { name: /^Rename .*Alpha topic/ }).click();
    const title = chat.sidebar.getByRole('textbox', { name: 'Conversation title' });
    await expect(title).toBeFocused();
    await title.fill('Renamed alpha');
    await title.press('Enter');
    await expect(chat.sidebar.getByRole('link', { name: 'Renamed alpha' })).toBeVisible();
    await expect(page.getByRole('heading', { level: 1, name: 'Renamed alpha' })).toBeVisible();
    await chat.sidebar.getByRole('button', { name: 'Rename Renamed alpha' }).click();
    await chat.sidebar.getByRole('textbox', { name: 'Conversation title' }).fill('Not kept');
    await chat.sidebar.getByRole('textbox', { name: 'Conversation title' }).press('Escape');
    await expect(chat.sidebar.getByRole('link', { name: 'Renamed alpha' })).toBeVisible();
    await page.reload();
    await expect(chat.sidebar.getByRole('link', { name: 'Renamed alpha' })).toBeVisible();

    // Delete asks first; Cancel keeps it.
    await chat.sidebar.getByRole('button', { name: 'Delete Renamed alpha' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete conversation?' });
    await expect(dialog).toBeVisible();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toBeHidden();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(2);
    await chat.sidebar.getByRole('button', { name: 'Delete Renamed alpha' }).click();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(1);
    // The open conversation was deleted: back to a new chat, the keyboard at the conversation now in its place.
    await expect(page).toHaveURL(/\/$/);
    await expect(chat.sidebar.getByRole('link', { name: /Beta topic/ })).toBeFocused();
    allowConsoleErrors(page, /status of 404/);
    await page.goto(alphaUrl);
    const notFound = page.locator('.empty-state').getByRole('heading', { name: 'Conversation not found' });
    await expect(notFound).toBeVisible();
    // Nothing to write into, and the top bar and tab say where one is.
    await expect(page.getByRole('textbox', { name: 'Message' })).toHaveCount(0);
    await expect(page.locator('.topbar-title')).toHaveText('Conversation not found');
    await expect(page).toHaveTitle('Conversation not found · Parley');
    // A malformed link is not found either (no request, no error toast).
    await page.goto('/c/not-a-uuid');
    await expect(notFound).toBeVisible();
    await expect(page.getByRole('alert')).toHaveCount(0);
  });

  test('loads the list page by page while scrolling', async ({ chat, page, request }) => {
    await chat.open();
    // Create 25 conversations through the API with the page's own session cookie.
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'session_token');
    expect(session).toBeTruthy();
    for (let i = 1; i <= 25; i++) {
      const res = await request.post('/api/v1/chat', {
        headers: { Authorization: `Bearer ${session?.value ?? ''}` },
        data: { message: `Bulk ${String(i).padStart(2, '0')}` },
      });
      expect(res.status()).toBe(200);
      await res.body();
    }
    await page.reload();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(20);
    await chat.sidebar.getByRole('link').last().scrollIntoViewIfNeeded();
    await chat.sidebar.evaluate((el) => el.scrollTo({ top: el.scrollHeight }));
    await expect(chat.sidebar.getByRole('link')).toHaveCount(25);
    await expect(chat.sidebar.getByRole('link').first()).toContainText('Bulk 25');
  });

  test('a search result found by an early message opens there, marked; later messages load below it; Latest goes to the end', async ({ chat, page, request }) => {
    await chat.open();
    const session = (await page.context().cookies()).find((c) => c.name === 'session_token');
    const headers = { Authorization: `Bearer ${session?.value ?? ''}` };
    // 40 turns (80 messages): the needle is in the third, far above the latest page of 50.
    let conversationId: string | undefined;
    for (let i = 1; i <= 40; i++) {
      const message = i === 3 ? 'Tell me about the needle in the haystack' : `Filler question ${i}`;
      const res = await request.post('/api/v1/chat', { headers, data: { message, ...(conversationId ? { conversation_id: conversationId } : {}) } });
      expect(res.status()).toBe(200);
      const body = await res.text();
      conversationId ??= /"conversation_id":"([^"]+)"/.exec(body)?.[1];
    }
    await page.reload();
    const search = page.getByRole('searchbox', { name: 'Search conversations' });
    await search.fill('haystack');
    const found = chat.sidebar.getByRole('link', { name: /haystack/ });
    await expect(found).toHaveCount(1);
    await found.click();
    await expect(page).toHaveURL(new RegExp(`/c/${conversationId}\\?m=`));
    const matchUrl = page.url();
    // Its newest message holding the text (the answer that repeats it), in view and marked; the latest turns not loaded.
    const focused = page.locator('app-message-item.is-focused');
    await expect(focused).toContainText('You said: Tell me about the needle in the haystack');
    await expect(focused).toBeInViewport();
    await expect(chat.userMessages.filter({ hasText: 'Filler question 40' })).toHaveCount(0);
    await page.screenshot({ path: test.info().outputPath('opened-at-match.png') });
    // Reading on: the later messages come in below as the reader scrolls down.
    await expect(page.getByRole('button', { name: 'Load later messages' })).toBeAttached();
    for (let i = 0; i < 40 && await chat.userMessages.filter({ hasText: 'Filler question 40' }).count() === 0; i++) {
      await page.locator('.scroller').evaluate((el) => el.scrollTo({ top: el.scrollHeight }));
      await page.waitForTimeout(100);
    }
    await expect(chat.userMessages.filter({ hasText: 'Filler question 40' })).toHaveCount(1);
    await expect(page.getByRole('button', { name: 'Load later messages' })).toHaveCount(0);
    // The address opens it at the match again (a reload); "latest" shows the conversation's end, and the address no longer names the match.
    await page.goto(matchUrl);
    await expect(focused).toBeInViewport();
    await page.getByRole('button', { name: 'Scroll to the latest message' }).click();
    await expect(chat.userMessages.filter({ hasText: 'Filler question 40' })).toBeInViewport();
    await expect(page).toHaveURL(new RegExp(`/c/${conversationId}$`));
    await expect(focused).toHaveCount(0);
    // A question asked while reading at the match goes at the end, after the latest answer.
    await page.goto(matchUrl);
    await expect(focused).toBeInViewport();
    await chat.ask('One more');
    await chat.waitForAnswer();
    await expect(chat.userMessages.last()).toHaveText('One more');
    await expect(chat.userMessages.nth(await chat.userMessages.count() - 2)).toHaveText('Filler question 40');
    await expect(page).toHaveURL(new RegExp(`/c/${conversationId}$`));
  });

  test('a search result opens at its match while the conversation\'s answer still streams, and stays there', async ({ chat, page }) => {
    await page.setViewportSize({ width: 1000, height: 600 });
    await chat.open();
    await chat.ask(unique('Garden notes'));
    await chat.waitForAnswer();
    await chat.followUp('Tell me about the needle in the haystack');
    await chat.waitForAnswer();
    // The essay pauses after its first words until released: it is still running however slow the steps below are.
    const essay = heldAnswer();
    await chat.followUp(`Write an essay [essay] ${essay.marker}`);
    await expect(chat.lastAnswer()).toContainText('Section 1 keeps going');
    // Left while the essay streams, and opened again at the earlier question found by search.
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await expect(chat.answers).toHaveCount(0);
    await page.getByRole('searchbox', { name: 'Search conversations' }).fill('haystack');
    await chat.sidebar.getByRole('link', { name: /haystack/ }).click();
    await expect(page).toHaveURL(/\?m=/);
    const focused = page.locator('app-message-item.is-focused');
    await expect(focused).toBeInViewport();
    await expect(chat.lastAnswer()).toHaveAttribute('aria-busy', 'true');
    await essay.release();
    // The view stays at the match while the answer below it goes on (it was pinned, and followed the answer out of view).
    await expect(chat.lastAnswer()).toContainText('Section 30', { timeout: 20_000 });
    await expect(focused).toBeInViewport();
    await chat.waitForAnswer();
    await expect(focused).toBeInViewport();
    // "Latest" still takes the reader down.
    await page.getByRole('button', { name: 'Scroll to the latest message' }).click();
    await expect(chat.lastAnswer().getByText('Section 40 keeps going for a while.')).toBeInViewport();
  });

  test('searches conversations by title and by what was said; Esc shows them all again', async ({ chat, page, request }) => {
    await chat.open();
    const session = (await page.context().cookies()).find((c) => c.name === 'session_token');
    for (const message of ['Lisbon trip plan', 'Budget for lisbon', 'Python decorators']) {
      const res = await request.post('/api/v1/chat', { headers: { Authorization: `Bearer ${session?.value ?? ''}` }, data: { message } });
      expect(res.status()).toBe(200);
      await res.body();
    }
    await page.reload();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(3);
    const search = page.getByRole('searchbox', { name: 'Search conversations' });
    await search.fill('LISBON');
    await expect(chat.sidebar.getByRole('link')).toHaveCount(2);
    await expect(chat.sidebar.getByRole('link', { name: 'Python decorators' })).toHaveCount(0);
    await search.fill('nothing of the sort');
    await expect(chat.sidebar.getByText('No conversation contains “nothing of the sort”.')).toBeVisible();
    // By what was said: no title holds "hello", every answer does; each shows its line with the match marked.
    await search.fill('HELLO');
    await expect(chat.sidebar.getByRole('link')).toHaveCount(3);
    const found = chat.sidebar.getByRole('link', { name: /Python decorators/ });
    await expect(found.locator('.conv-snippet mark')).toHaveText('Hello');
    await expect(found.locator('.conv-snippet')).toContainText('You said: Python decorators');
    await expect(found).toHaveAccessibleName(/^Python decorators Answer: Hello/);
    await found.click();
    await expect(page.getByRole('heading', { level: 1 })).toContainText('Python decorators');
    await search.press('Escape');
    await expect(search).toHaveValue('');
    await expect(chat.sidebar.getByRole('link')).toHaveCount(3);
    // A space typed before a pause stays (the box is not rewritten with the trimmed search).
    await search.pressSequentially('lisbon ');
    await expect(chat.sidebar.getByRole('link')).toHaveCount(2);
    await search.pressSequentially('trip');
    await expect(search).toHaveValue('lisbon trip');
    await expect(chat.sidebar.getByRole('link')).toHaveCount(1);
    // A new conversation ends the search: it shows in the list, open, with its title in the top bar.
    await page.getByRole('button', { name: 'New chat' }).first().click();
    await chat.ask('Rome in spring');
    await expect(search).toHaveValue('');
    await expect(chat.sidebar.getByRole('link', { name: 'Rome in spring' })).toHaveAttribute('aria-current', 'page');
    await expect(page.getByRole('heading', { level: 1 })).toContainText('Rome in spring');
  });

  test('a search result shows the word it was found by, after a long word too (the two-line clamp hid it)', async ({ chat, page }) => {
    await chat.open();
    const word = `zebracorn${Date.now() % 100_000}`;
    await chat.ask(`${'Averyveryverylongtokenwithoutanyspaces'.repeat(2)} ${word} in the forest`);
    await chat.waitForAnswer();
    await page.getByRole('searchbox', { name: 'Search conversations' }).fill(word);
    const snippet = chat.sidebar.locator('.conv-snippet');
    await expect(snippet.locator('mark')).toHaveText(word);
    const [mark, box] = await Promise.all([snippet.locator('mark').boundingBox(), snippet.boundingBox()]);
    expect(mark && box).toBeTruthy();
    // Within the snippet's two lines, not clipped below or beside them.
    expect(mark!.y + mark!.height).toBeLessThanOrEqual(box!.y + box!.height + 0.5);
    expect(mark!.x + mark!.width).toBeLessThanOrEqual(box!.x + box!.width + 0.5);
  });

  test('exports the open conversation as Markdown and as JSON, every message included', async ({ chat, page, request }) => {
    await chat.open();
    await chat.ask('Export me: first question');
    await chat.waitForAnswer();
    const id = /\/c\/([0-9a-f-]{36})$/.exec(page.url())?.[1] ?? '';
    // More messages than the conversation opens with (its latest page), sent through the API.
    const session = (await page.context().cookies()).find((c) => c.name === 'session_token');
    for (let i = 0; i < 30; i++) {
      const res = await request.post('/api/v1/chat', {
        headers: { Authorization: `Bearer ${session?.value ?? ''}` }, data: { message: `follow-up ${i}`, conversation_id: id },
      });
      expect(res.status()).toBe(200);
      await res.body();
    }
    await page.reload();
    const toggle = page.getByRole('button', { name: 'Export conversation' });
    await toggle.click();
    await expect(toggle).toHaveAttribute('aria-expanded', 'true');
    const [markdown] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Markdown (.md)' }).click()]);
    expect(markdown.suggestedFilename()).toBe('Export me first question.md');
    const text = readFileSync(await markdown.path(), 'utf8');
    expect(text.startsWith('# Export me: first question\n')).toBe(true);
    expect(text.match(/^## You$/gm)).toHaveLength(31);
    expect(text).toContain('Hello! You said: Export me: first question');
    expect(text.indexOf('follow-up 0')).toBeLessThan(text.indexOf('follow-up 29'));
    await expect(page.getByRole('status').filter({ hasText: 'Conversation exported as Export me first question.md' })).toBeAttached();
    await expect(toggle).toBeFocused();

    await toggle.click();
    const [json] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'JSON (.json)' }).click()]);
    const parsed = JSON.parse(readFileSync(await json.path(), 'utf8')) as { format: string; conversation: { id: string }; messages: { position: number }[] };
    expect(parsed.format).toBe('parley.conversation.v1');
    expect(parsed.conversation.id).toBe(id);
    expect(parsed.messages.map((m) => m.position)).toEqual(Array.from({ length: 62 }, (_, i) => i));
    // Escape closes the choices and gives the focus back to the button.
    await toggle.click();
    await page.keyboard.press('Escape');
    await expect(page.getByRole('button', { name: 'JSON (.json)' })).toHaveCount(0);
    await expect(toggle).toBeFocused();
    // Nothing to export on a new chat.
    await page.getByRole('button', { name: 'New chat' }).first().click();
    await expect(toggle).toHaveCount(0);
  });

  test('erases everything of the session after confirmation, and starts again on a new, empty one', async ({ chat, page }) => {
    await chat.open();
    await chat.ask('Something private');
    await chat.waitForAnswer();
    const privateUrl = page.url();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(1);

    // Cancel changes nothing.
    await page.getByRole('button', { name: 'Erase my data' }).click();
    const dialog = page.getByRole('dialog', { name: 'Erase your data?' });
    await expect(dialog).toBeVisible();
    // Not gated here: nothing to say of an access token.
    await expect(dialog).not.toContainText('access token');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toBeHidden();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(1);

    await page.getByRole('button', { name: 'Erase my data' }).click();
    await dialog.getByRole('button', { name: 'Erase everything' }).click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByRole('heading', { name: 'How can I help you today?' })).toBeVisible();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(0);
    // Its address finds nothing any more (session-erasure.medium.spec.ts checks that the rows are gone).
    allowConsoleErrors(page, /status of 404/);
    await page.goto(privateUrl);
    await expect(page.getByText('Conversation not found').first()).toBeVisible();
  });

  test('a session erased in another tab: this one starts again on a new session, says why, and keeps the text being written', async ({ chat, page, context }) => {
    await chat.open();
    await chat.ask('Something from before');
    await chat.waitForAnswer();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(1);
    await chat.input.fill('A follow-up I was writing');

    // Another tab of this browser erases the session (the cookie is shared).
    const other = await context.newPage();
    await other.goto(page.url());
    await other.getByRole('button', { name: 'Erase my data' }).click();
    await other.getByRole('dialog', { name: 'Erase your data?' }).getByRole('button', { name: 'Erase everything' }).click();
    await expect(other.getByRole('heading', { name: 'How can I help you today?' })).toBeVisible();

    // This tab no longer shows what was erased.
    await expect(page.getByRole('status').filter({ hasText: 'Your earlier session ended' })).toBeVisible();
    await expect(page).toHaveURL(/\/$/);
    await expect(chat.sidebar.getByRole('link')).toHaveCount(0);
    await expect(chat.userMessages).toHaveCount(0);
    await expect(chat.input).toHaveValue('A follow-up I was writing');
    // Both tabs go on in the same new session.
    await chat.send.click();
    await chat.waitForAnswer();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(1);
    await other.reload();
    await expect(other.getByRole('navigation', { name: 'Conversations' }).getByRole('link')).toHaveCount(1);
    await expect(page.getByText('Conversation not found')).toHaveCount(0);
    await other.close();
  });

  test('a session gone from under the page (its cookie expired): sending starts again on a new one, the question kept', async ({ chat, page, context }) => {
    await chat.open();
    await chat.ask('Something from before');
    await chat.waitForAnswer();
    await context.clearCookies();
    allowConsoleErrors(page, /status of 401/);

    await chat.input.fill('A follow-up I typed');
    await chat.send.click();
    await expect(page.getByRole('status').filter({ hasText: 'Your earlier session ended' })).toBeVisible();
    await expect(page).toHaveURL(/\/$/);
    await expect(chat.sidebar.getByRole('link')).toHaveCount(0);
    await expect(chat.input).toHaveValue('A follow-up I typed');
    await chat.send.click();
    await chat.waitForAnswer();
    await expect(chat.userMessages).toHaveText(['A follow-up I typed']);
  });

  test('a browser that lost its site storage but not its cookie keeps its conversations (Safari empties storage after seven days away)', async ({ chat, page }) => {
    await chat.open();
    const question = unique('Something to keep');
    await chat.ask(question);
    await chat.waitForAnswer();
    const address = page.url();
    await page.evaluate(() => { localStorage.clear(); sessionStorage.clear(); });
    await page.goto(address);
    await expect(chat.userMessages).toHaveText([question]);
    await expect(chat.sidebar.getByRole('link')).toHaveCount(1);
  });

  test('unknown paths fall back to the app', async ({ chat, page }) => {
    await chat.open('/some/deep/unknown/path');
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByRole('heading', { name: 'How can I help you today?' })).toBeVisible();
  });

  test('the list follows another tab: deleted, renamed and new conversations at once; the open one deleted there is not found here', async ({ chat, page, context, request }) => {
    await chat.open();
    const session = (await page.context().cookies()).find((c) => c.name === 'session_token');
    for (const message of ['Tab oldest', 'Tab renamed', 'Tab deleted', 'Tab open', 'Tab newest']) {
      const res = await request.post('/api/v1/chat', { headers: { Authorization: `Bearer ${session?.value ?? ''}` }, data: { message } });
      expect(res.status()).toBe(200);
      await res.body();
    }
    await page.reload();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(5);
    await chat.sidebar.getByRole('link', { name: 'Tab open' }).click();
    await expect(chat.userMessages).toHaveText(['Tab open']);

    // Another tab of this browser (the same session) changes the list; this tab is not touched meanwhile.
    const other = await context.newPage();
    await other.goto('/');
    const otherSidebar = other.getByRole('navigation', { name: 'Conversations' });
    const otherDialog = other.getByRole('dialog', { name: 'Delete conversation?' });
    await expect(otherSidebar.getByRole('link')).toHaveCount(5);

    // Deleted there, below the open one here.
    await otherSidebar.getByRole('link', { name: 'Tab deleted' }).hover();
    await otherSidebar.getByRole('button', { name: 'Delete Tab deleted' }).click();
    await otherDialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(chat.sidebar.getByRole('link', { name: 'Tab deleted' })).toHaveCount(0);
    await expect(chat.sidebar.getByRole('link')).toHaveCount(4);

    // Renamed there.
    await otherSidebar.getByRole('link', { name: 'Tab renamed' }).hover();
    await otherSidebar.getByRole('button', { name: 'Rename Tab renamed' }).click();
    await otherSidebar.getByRole('textbox', { name: 'Conversation title' }).fill('Renamed in the other tab');
    await otherSidebar.getByRole('textbox', { name: 'Conversation title' }).press('Enter');
    await expect(chat.sidebar.getByRole('link', { name: 'Renamed in the other tab' })).toBeVisible();
    await expect(chat.sidebar.getByRole('link', { name: 'Tab renamed' })).toHaveCount(0);

    // Started there.
    await other.getByRole('textbox', { name: 'Message' }).fill('Started in the other tab');
    await other.getByRole('textbox', { name: 'Message' }).press('Enter');
    await expect(other).toHaveURL(/\/c\/[0-9a-f-]{36}$/);
    await expect(chat.sidebar.getByRole('link', { name: 'Started in the other tab' })).toBeVisible();

    // The conversation open here is deleted there: nothing here offers to write into it or export it any more.
    await otherSidebar.getByRole('link', { name: 'Tab open' }).hover();
    await otherSidebar.getByRole('button', { name: 'Delete Tab open' }).click();
    await otherDialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(page.locator('.empty-state').getByRole('heading', { name: 'Conversation not found' })).toBeVisible();
    await expect(chat.input).toHaveCount(0);
    await expect(page.getByRole('button', { name: /^Export/ })).toHaveCount(0);
    await expect(chat.sidebar.getByRole('link', { name: 'Tab open' })).toHaveCount(0);
    await expect(chat.sidebar.getByRole('link')).toHaveCount(4);
    await other.close();
  });

  test('a conversation deleted through the API (not from this browser) leaves the list once opening it finds it gone', async ({ chat, page, request }) => {
    await chat.open();
    const session = (await page.context().cookies()).find((c) => c.name === 'session_token');
    const auth = { Authorization: `Bearer ${session?.value ?? ''}` };
    for (const message of ['Still here', 'Deleted by an integrator']) {
      const res = await request.post('/api/v1/chat', { headers: auth, data: { message } });
      expect(res.status()).toBe(200);
      await res.body();
    }
    await page.reload();
    await expect(chat.sidebar.getByRole('link')).toHaveCount(2);
    const gone = chat.sidebar.getByRole('link', { name: 'Deleted by an integrator' });
    const id = /\/c\/([0-9a-f-]{36})/.exec((await gone.getAttribute('href')) ?? '')?.[1];
    expect((await request.delete(`/api/v1/conversations/${id ?? ''}`, { headers: auth })).status()).toBe(204);

    allowConsoleErrors(page, /status of 404/);
    await gone.click();
    await expect(page.locator('.empty-state').getByRole('heading', { name: 'Conversation not found' })).toBeVisible();
    await expect(gone).toHaveCount(0);
    await expect(chat.sidebar.getByRole('link')).toHaveCount(1);
  });
});
