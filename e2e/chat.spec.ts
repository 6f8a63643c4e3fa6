import { CODE_REPLY } from './support/fake-openai';
import { expect, heldAnswer, test, unique } from './support/fixtures';

test.describe('chatting', () => {
  test('a first visit can chat at once; the answer streams in as Markdown and survives a reload', async ({ chat, page }) => {
    await chat.open();
    await expect(page.getByRole('heading', { name: 'How can I help you today?', level: 2 })).toBeVisible();
    // One h1 per page: the top bar's title.
    await expect(page.getByRole('heading', { level: 1 })).toHaveCount(1);
    await expect(page.getByText('fake-gpt-e2e').first()).toBeVisible();

    await chat.input.fill('Hi there');
    await chat.input.press('Shift+Enter');
    await chat.input.pressSequentially('second line');
    await expect(chat.input).toHaveValue('Hi there\nsecond line');
    await chat.input.press('Enter');
    await expect(page).toHaveURL(/\/c\/[0-9a-f-]{36}$/);
    await expect(chat.input).toHaveValue('');
    await expect(chat.userMessages.first()).toContainText('Hi there\nsecond line');

    const answer = await chat.waitForAnswer();
    await expect(answer).toContainText('Hello! You said: Hi there');
    await expect(chat.send).toBeVisible();
    await expect(answer).toContainText('fake-gpt-e2e');

    // The conversation is in the sidebar, titled and current.
    const current = chat.sidebar.getByRole('link', { name: /Hi there/ });
    await expect(current).toHaveAttribute('aria-current', 'page');

    const url = page.url();
    await page.reload();
    await expect(page).toHaveURL(url);
    await expect(chat.userMessages).toHaveCount(1);
    await expect(chat.lastAnswer()).toContainText('Hello! You said: Hi there');
    await expect(chat.lastAnswer()).toHaveAttribute('data-status', 'complete');
  });

  test('renders math with KaTeX (its stylesheet and fonts fetched only then), read by screen readers as MathML', async ({ chat, page }) => {
    const fetched: string[] = [];
    page.on('request', (request) => fetched.push(new URL(request.url()).pathname));
    await chat.open();
    expect(fetched.some((path) => /katex|KaTeX/.test(path))).toBe(false);
    await chat.ask('Some math please [math]');
    const answer = await chat.waitForAnswer();
    await expect(answer.locator('.katex')).toHaveCount(3);
    await expect(answer.locator('.katex-display')).toHaveCount(1);
    await expect(answer.locator('math').first()).toBeAttached();
    await expect(answer).toContainText('It costs $5 and $10.');
    // The formula is laid out in KaTeX's font (CSP allows the stylesheet and fonts: same origin).
    await expect.poll(() => page.evaluate(() => [...document.fonts].some((f) => /KaTeX_Main/.test(f.family) && f.status === 'loaded'))).toBe(true);
    expect(fetched).toContain('/katex.css');
    expect(fetched.some((path) => /^\/media\/KaTeX_Main-Regular-\w+\.woff2$/.test(path))).toBe(true);
  });

  test('renders code blocks highlighted, with a copy button per block, and copies messages', async ({ chat, page, context }) => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    await chat.open();
    await chat.ask('Show me code [code]');
    const answer = await chat.waitForAnswer();
    const code = answer.locator('pre code');
    await expect(code).toContainText('def greet(name):');
    await expect(code.locator('.hljs-keyword').first()).toHaveText('def');
    await expect(answer.getByRole('listitem')).toHaveCount(2);

    await answer.getByRole('button', { name: 'Copy code' }).click();
    // Its name says it too (for 2 s), not only its text.
    await expect(answer.locator('.code-block').getByRole('button', { name: 'Copied' })).toHaveText('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('def greet(name):\n    return f"Hello, {name}!"');

    await answer.getByRole('button', { name: 'Copy message' }).click();
    await expect(answer.locator('.msg-actions').getByRole('button', { name: 'Copied' })).toBeVisible();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(CODE_REPLY);
  });

  test('Esc that cancels an input method\'s composition leaves the answer running', async ({ chat, page }) => {
    const held = heldAnswer();
    await chat.open();
    await chat.ask(`Count slowly ${held.marker}`);
    const answer = chat.lastAnswer();
    await expect(answer).toContainText('w08');
    await expect(answer).toHaveAttribute('aria-busy', 'true');
    // Typing Japanese while the answer is written: Esc cancels the composition (keydown with isComposing), not the answer.
    await chat.input.focus();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Input.imeSetComposition', { text: 'かん', selectionStart: 2, selectionEnd: 2 });
    await page.evaluate(() => {
      document.addEventListener('keydown', (event) => { document.body.dataset['escComposing'] = String(event.isComposing); }, { once: true, capture: true });
    });
    await page.keyboard.press('Escape');
    await expect(page.locator('body')).toHaveAttribute('data-esc-composing', 'true');
    await held.release();
    await chat.waitForAnswer('complete');
    await expect(answer).toContainText('w60');
    await expect(answer.getByText('Stopped', { exact: true })).toHaveCount(0);
  });

  test('Stop (button and Esc) keeps the partial answer', async ({ chat, page }) => {
    await chat.open();
    await chat.ask(`Count slowly ${heldAnswer().marker}`);
    const answer = chat.lastAnswer();
    // Token by token: the first words are there while the last one is not yet.
    await expect(answer).toContainText('w03');
    await expect(answer).not.toContainText('w60');
    await expect(answer).toHaveAttribute('aria-busy', 'true');
    await chat.stop.click();
    await chat.waitForAnswer('stopped');
    await expect(answer.getByText('Stopped', { exact: true })).toBeVisible();
    const partial = (await answer.locator('.markdown').innerText()).trim();
    expect(partial).toMatch(/^w01 w02 w03/);
    expect(partial).not.toContain('w60');

    await chat.followUp(`Again slowly ${heldAnswer().marker} with Esc`);
    await expect(chat.lastAnswer()).toContainText('w02');
    await page.keyboard.press('Escape');
    await chat.waitForAnswer('stopped');
    await expect(chat.lastAnswer()).not.toContainText('w60');

    // The stopped partial answer is what the server kept.
    await page.reload();
    await expect(chat.answers.first()).toHaveAttribute('data-status', 'stopped');
    await expect(chat.answers.first().locator('.markdown')).toHaveText(partial);
  });

  test('Regenerate replaces the last answer', async ({ chat, page }) => {
    await chat.open();
    const prompt = unique('Tell me something');
    await chat.ask(prompt);
    await chat.waitForAnswer();
    await expect(chat.lastAnswer()).toContainText(`Hello! You said: ${prompt}`);
    await expect(chat.lastAnswer()).not.toContainText('attempt');
    await page.getByRole('button', { name: 'Regenerate', exact: true }).click();
    await expect(chat.lastAnswer()).toContainText('(attempt 2)');
    await chat.waitForAnswer();
    await expect(chat.answers).toHaveCount(1);
    await page.reload();
    await expect(chat.answers).toHaveCount(1);
    await expect(chat.lastAnswer()).toContainText('(attempt 2)');
  });

  test('edits the last question: the answer is to the new text, and only the last question can be edited', async ({ chat, page }) => {
    await chat.open();
    const first = unique('First question');
    await chat.ask(first);
    await chat.waitForAnswer();
    const typo = unique('Capital of Frnace');
    await chat.ask(typo);
    await chat.waitForAnswer();
    await expect(chat.lastAnswer()).toContainText(`You said: ${typo}`);
    // The earlier question has no Edit; the last one has.
    await expect(chat.userMessages.first().getByRole('button', { name: 'Edit message' })).toHaveCount(0);
    await chat.userMessages.last().hover();
    await chat.userMessages.last().getByRole('button', { name: 'Edit message' }).click();
    const box = page.getByRole('textbox', { name: 'Edit your message' });
    await expect(box).toBeFocused();
    await expect(box).toHaveValue(typo);
    // Emptied, it cannot be sent (as the message box's Send).
    const sendEdit = page.getByRole('button', { name: 'Send edited message' });
    await box.fill('  ');
    await expect(sendEdit).toBeDisabled();
    const fixed = typo.replace('Frnace', 'France');
    await box.fill(fixed);
    await expect(sendEdit).toBeEnabled();
    await box.press('Enter');
    await expect(chat.userMessages.last()).toContainText(fixed);
    await chat.waitForAnswer();
    await expect(chat.lastAnswer()).toContainText(`You said: ${fixed}`);
    await expect(chat.answers).toHaveCount(2);
    await page.reload();
    await expect(chat.userMessages).toHaveCount(2);
    await expect(chat.userMessages.last()).toContainText(fixed);
    await expect(chat.userMessages.last()).not.toContainText('Frnace');
    await expect(chat.answers).toHaveCount(2);
    await expect(chat.lastAnswer()).toContainText(`You said: ${fixed}`);
  });

  test('Arabic and Hebrew read right to left wherever they are shown, each block its own way; code stays left to right', async ({ chat, page }) => {
    const direction = (locator: ReturnType<typeof page.locator>) => locator.evaluate((el) => getComputedStyle(el).direction);
    await chat.open();
    const question = unique('مرحبا، هل يمكنك المساعدة في هذا الموضوع الطويل جدا من فضلك؟ [rtl]');
    await chat.input.fill(question);
    expect(await direction(chat.input)).toBe('rtl');
    await chat.input.press('Enter');
    const answer = await chat.waitForAnswer();
    expect(await direction(chat.userMessages.last().locator('.msg-text'))).toBe('rtl');
    // The titles: cut at their end (the ellipsis at the left), not at their start.
    expect(await direction(page.locator('.topbar-title'))).toBe('rtl');
    expect(await direction(chat.sidebar.locator('.conv-title').first())).toBe('rtl');
    const blocks = await answer.locator('.markdown').evaluate((md) => {
      const dir = (selector: string) => { const el = md.querySelector(selector); return el ? getComputedStyle(el).direction : 'missing'; };
      const paragraphs = Array.from(md.querySelectorAll(':scope .md-block > p')).map((p) => getComputedStyle(p).direction);
      const quote = md.querySelector('blockquote');
      return {
        heading: dir('h4'), paragraphs, list: dir('ul'), item: dir('li'), quote: dir('blockquote'), cell: dir('td'), table: dir('table'),
        code: dir('.code-block'), quoteBarAtRight: quote ? parseFloat(getComputedStyle(quote).borderRightWidth) > 0 : false,
      };
    });
    expect(blocks).toEqual({
      heading: 'rtl', paragraphs: ['rtl', 'ltr'], list: 'rtl', item: 'rtl', quote: 'rtl', cell: 'rtl', table: 'rtl', code: 'ltr', quoteBarAtRight: true,
    });
    await page.screenshot({ path: `${__dirname}/artifacts/screenshots/desktop-rtl.png` });
    await chat.userMessages.last().hover();
    await chat.userMessages.last().getByRole('button', { name: 'Edit message' }).click();
    expect(await direction(page.getByRole('textbox', { name: 'Edit your message' }))).toBe('rtl');
  });

  test('a draft survives a reload, for a new chat and for each conversation, and goes once sent', async ({ chat, page }) => {
    await chat.open();
    await chat.input.fill('An idea for a new chat');
    await page.reload();
    await expect(chat.input).toHaveValue('An idea for a new chat');
    await chat.ask(unique('Draft host'));
    await chat.waitForAnswer();
    await chat.input.fill('A follow-up not sent yet');
    await page.reload();
    await expect(chat.input).toHaveValue('A follow-up not sent yet');
    await chat.input.press('Enter');
    await expect(chat.userMessages).toHaveCount(2);
    await expect(chat.input).toHaveValue('');
    await chat.waitForAnswer();
    await page.reload();
    await expect(chat.userMessages).toHaveCount(2);
    await expect(chat.input).toHaveValue('');
    // The new chat's draft was sent as the first question.
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await expect(chat.input).toHaveValue('');
  });

  test('thumbs up/down with an optional comment', async ({ chat, page }) => {
    await chat.open();
    await chat.ask('Rate me');
    const answer = await chat.waitForAnswer();
    const feedbackSent = page.waitForResponse((r) => r.url().endsWith('/api/v1/chat/feedback') && r.status() === 200);
    await answer.getByRole('button', { name: 'Bad answer' }).click();
    await feedbackSent;
    await expect(answer.getByRole('button', { name: 'Bad answer' })).toHaveAttribute('aria-pressed', 'true');
    await answer.getByRole('textbox', { name: /What went wrong/ }).fill('Too short');
    const commentSent = page.waitForResponse((r) => r.url().endsWith('/api/v1/chat/feedback') && r.status() === 200);
    await answer.getByRole('button', { name: 'Send feedback' }).click();
    const body = (await commentSent).request().postDataJSON() as Record<string, unknown>;
    expect(body).toMatchObject({ feedback: 'negative', comment: 'Too short' });
    await expect(answer.getByText('Thanks for the feedback')).toBeVisible();

    await page.reload();
    await expect(chat.lastAnswer().getByRole('button', { name: 'Bad answer' })).toHaveAttribute('aria-pressed', 'true');
    await chat.lastAnswer().getByRole('button', { name: 'Good answer' }).click();
    await expect(chat.lastAnswer().getByRole('button', { name: 'Good answer' })).toHaveAttribute('aria-pressed', 'true');
    await expect(chat.lastAnswer().getByRole('button', { name: 'Bad answer' })).toHaveAttribute('aria-pressed', 'false');
  });

  test('a long conversation opens at its latest messages and loads older ones on scrolling up', async ({ chat, page }) => {
    test.slow();
    await chat.open();
    await chat.ask('Message 1 [long]');
    await chat.waitForAnswer();
    for (let i = 2; i <= 26; i++) {
      await chat.followUp(`Message ${i}`);
      await chat.waitForAnswer();
      await expect(chat.lastAnswer()).toContainText(`You said: Message ${i}`);
    }
    await page.reload();
    // 52 messages; the first page holds the latest 50, so the first question is not there yet.
    await expect(chat.userMessages.last()).toContainText('Message 26');
    await expect(chat.userMessages.last()).toBeInViewport();
    await expect(chat.userMessages).toHaveCount(25);
    // The page is rendered newest first, older messages added above in later tasks: the view stays at its end.
    await expect(chat.userMessages.last()).toBeInViewport();
    await expect(chat.lastAnswer()).toBeInViewport();
    await page.locator('.scroller').evaluate((el) => el.scrollTo({ top: 0 }));
    await expect(chat.userMessages).toHaveCount(26);
    await expect(chat.userMessages.first()).toContainText('Message 1 [long]');
  });

  test('a long streamed answer skips drawing what is off screen, yet looks as it does opened from history', async ({ chat, page }) => {
    await page.setViewportSize({ width: 1000, height: 600 });
    await chat.open();
    await chat.ask(unique('Write ten chapters [chapters]'));
    const answer = await chat.waitForAnswer();
    await expect(answer).toContainText('const chapter = 10;');
    const chunks = answer.locator('.markdown > .md-chunk');
    // Chunks off screen skip their contents (content-visibility: auto); the one at the bottom is drawn.
    const drawn = (): Promise<boolean[]> => chunks.evaluateAll((els) => els.map((el) => el.firstElementChild!.checkVisibility({ contentVisibilityAuto: true })));
    // [first, second, second to last, last] of the five chunks.
    const ends = async (): Promise<boolean[]> => (await drawn()).filter((_, i, all) => i < 2 || i >= all.length - 2);
    expect(await chunks.count()).toBe(5);
    await expect.poll(async () => (await ends()).filter((_, i) => i !== 2)).toEqual([false, false, true]);
    const scroller = page.locator('.scroller');
    const geometry = (): Promise<number[]> => answer.evaluate((el) => {
      const top = el.getBoundingClientRect().top;
      return [...el.querySelectorAll('.md-chunk'), el.querySelector('.markdown')!].map((node) => Math.round(node.getBoundingClientRect().bottom - top));
    });
    const streamed = await geometry();
    const height = await scroller.evaluate((el) => el.scrollHeight);

    // Back at the top: drawn now, at the size it was remembered at (the page does not jump).
    await scroller.evaluate((el) => el.scrollTo({ top: 0 }));
    await expect(answer.getByText('Chapter 1, paragraph 1 goes on')).toBeInViewport();
    // (The last chunk, the open one while streaming, is never skipped.)
    await expect.poll(async () => (await ends()).filter((_, i) => i !== 1)).toEqual([true, false, true]);
    expect(await scroller.evaluate((el) => [el.scrollTop, el.scrollHeight])).toEqual([0, height]);
    expect(await geometry()).toEqual(streamed);
    await page.screenshot({ path: `${__dirname}/artifacts/screenshots/desktop-long-answer-top.png` });

    // Opened from history nothing is skipped, and every chunk ends where it did while streamed.
    await page.reload();
    await expect(chat.lastAnswer()).toContainText('const chapter = 10;');
    await expect.poll(drawn).toEqual([true, true, true, true, true]);
    await expect.poll(geometry).toEqual(streamed);
  });

  test('a conversation opened from history draws only the answers on screen, and scrolling up through it never jumps', async ({ chat, page }) => {
    test.slow();
    await page.setViewportSize({ width: 1000, height: 600 });
    await chat.open();
    await chat.converse(7, '[long]');
    await page.reload();
    await expect(chat.lastAnswer()).toContainText('Paragraph 40 of a long answer.');
    await expect(chat.lastAnswer()).toBeInViewport();
    // Answers far above are not drawn (content-visibility: auto on each answer) until scrolled to.
    const isDrawn = (answer: number): Promise<boolean> => chat.answers.nth(answer).locator('.markdown')
      .evaluate((el) => el.checkVisibility({ contentVisibilityAuto: true }));
    await expect.poll(() => isDrawn(3)).toBe(false);
    // The view went to the end before the browser first drew it: the answers at the top, where a
    // scroller starts, were never drawn either (still at the size they are guessed at).
    const firstAtOpen = await chat.answers.first().evaluate((el) => el.getBoundingClientRect().height);
    expect(await isDrawn(6)).toBe(true);

    // Each step up moves what is on screen by the step, never more: an answer drawn on the way in at
    // another size than it was guessed at (or remembered at) resizes above without pushing the page
    // (scroll anchoring; without it this loop fails). Steps are scrolled by script: headless Chromium held
    // a wheel event back for seconds now and then.
    const scroller = page.locator('.scroller');
    for (let step = 0; step < 200 && (await scroller.evaluate((el) => el.scrollTop)) > 0; step++) {
      const probe = await page.evaluate(() => {
        document.querySelector('[data-probe]')?.removeAttribute('data-probe');
        const el = document.elementFromPoint(500, 300)!;
        el.setAttribute('data-probe', '');
        return { top: el.getBoundingClientRect().top, scrollTop: document.querySelector('.scroller')!.scrollTop };
      });
      await scroller.evaluate((el) => el.scrollBy({ top: -400, behavior: 'instant' }));
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
      const moved = await page.locator('[data-probe]').evaluate((el) => el.getBoundingClientRect().top);
      expect(Math.abs(moved - probe.top - Math.min(400, probe.scrollTop))).toBeLessThanOrEqual(2);
    }
    await expect(chat.userMessages.first()).toBeInViewport();
    expect(await isDrawn(0)).toBe(true);
    expect(await chat.answers.first().evaluate((el) => el.getBoundingClientRect().height)).toBeGreaterThan(firstAtOpen + 500);
    // On paper every answer is drawn, the last one too (now far below the screen).
    expect(await isDrawn(6)).toBe(false);
    await page.emulateMedia({ media: 'print' });
    expect(await isDrawn(6)).toBe(true);
    await page.emulateMedia({ media: 'screen' });
  });

  test('long code in a conversation opened from history is highlighted only in the answers drawn', async ({ chat, page }) => {
    test.slow();
    await page.setViewportSize({ width: 1000, height: 600 });
    await chat.open();
    // Six long answers: while the conversation opens the browser may draw one or two besides the last (its
    // timing), never all of those far from the end.
    await chat.converse(6, '[long-code]');
    await page.reload();
    await expect(chat.lastAnswer()).toContainText('Paragraph 40 of a long answer.');
    // Long code is shown plain first and highlighted in the background (markdown-renderer), and only once
    // its answer is drawn: the last answer's block gets its colours, answers not drawn stay plain (before,
    // every answer's was highlighted within the second, on screen or not). The answers are the same text,
    // so their views share blocks: each is still told when its block is highlighted.
    const isHighlighted = (answer: number): Promise<boolean> => chat.answers.nth(answer).locator('pre code .hljs-keyword').count().then((n) => n > 0);
    await expect.poll(() => isHighlighted(5)).toBe(true);
    await page.waitForTimeout(1000);
    // Answers far from the end are never drawn, so their code stays plain (which ones the browser drew
    // while the conversation opened depends on its timing; before, all four were highlighted in the second).
    const plain: number[] = [];
    for (let i = 0; i < 5; i++) if (!(await isHighlighted(i))) plain.push(i);
    expect(plain.length).toBeGreaterThan(0);
    const target = plain[0];
    expect(await chat.answers.nth(target).locator('pre code').textContent()).toContain('const line119 = compute(119);');
    await chat.answers.nth(target).evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await expect.poll(() => isHighlighted(target)).toBe(true);
  });

  test('stays pinned to the bottom while streaming, unless the reader scrolls up', async ({ chat, page }) => {
    await page.setViewportSize({ width: 1000, height: 600 });
    await chat.open();
    await chat.ask('Write an essay [essay]');
    const scroller = page.locator('.scroller');
    const distanceFromBottom = (): Promise<number> => scroller.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
    const isOverflowing = (): Promise<boolean> => scroller.evaluate((el) => el.scrollHeight > el.clientHeight + 200);
    await expect.poll(isOverflowing).toBe(true);
    await expect(chat.lastAnswer()).toContainText('Section 12');
    // Polled: a sample taken between a render and the ResizeObserver callback that follows it
    // (same frame, before paint: the reader never sees it) can be a few lines short.
    await expect.poll(distanceFromBottom).toBeLessThan(48);

    await scroller.hover();
    await page.mouse.wheel(0, -400);
    const jump = page.getByRole('button', { name: 'Scroll to the latest message' });
    await expect(jump).toBeVisible();
    const before = await scroller.evaluate((el) => el.scrollTop);
    await expect(chat.lastAnswer()).toContainText('Section 25');
    // Content kept arriving but the view did not move.
    expect(await scroller.evaluate((el) => el.scrollTop)).toBe(before);
    expect(await distanceFromBottom()).toBeGreaterThan(100);
    await page.screenshot({ path: `${__dirname}/artifacts/screenshots/desktop-streaming-scrolled-up.png` });

    await jump.click();
    await expect(jump).toBeHidden();
    await chat.waitForAnswer();
    await expect.poll(distanceFromBottom).toBeLessThan(48);
  });
});
