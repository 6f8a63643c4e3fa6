import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { expect, test, unique } from './support/fixtures';

const SHOTS = join(__dirname, 'artifacts', 'screenshots');

async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

test.describe('accessibility and layout', () => {
  for (const theme of ['light', 'dark'] as const) {
    test(`no serious axe violations on the main views, ${theme} theme; screenshots`, async ({ chat, page }) => {
      // Five axe runs and two streamed answers: 33–47 s on a busy 2-core machine, past the
      // default 45 s; the time is the work's, not a wait.
      test.slow();
      await page.emulateMedia({ colorScheme: theme });
      await page.setViewportSize({ width: 1280, height: 800 });
      await chat.open();
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: join(SHOTS, `desktop-welcome-${theme}.png`) });

      await chat.ask('Show me code [code]');
      await chat.waitForAnswer();
      // A table wider than the answer scrolls sideways: axe's scrollable-region-focusable wants the keyboard let in.
      await chat.followUp(unique('And a wide table [wide-table]'));
      const answer = await chat.waitForAnswer();
      const table = answer.getByRole('table', { name: 'Table, scrolls sideways' });
      await expect(table).toHaveAttribute('tabindex', '0');
      // Reached from the keyboard, it shows its ring, drawn inside its edge (outside, what skips rendering clips it).
      await answer.getByRole('button', { name: 'Copy message' }).focus();
      await page.keyboard.press('Shift+Tab');
      await expect(table).toBeFocused();
      const ring = await table.evaluate((el) => {
        const style = getComputedStyle(el);
        return { style: style.outlineStyle, width: parseFloat(style.outlineWidth), offset: parseFloat(style.outlineOffset), color: style.outlineColor };
      });
      expect(ring.style).toBe('solid');
      expect(ring.width).toBeGreaterThanOrEqual(2);
      expect(ring.offset + ring.width).toBeLessThanOrEqual(0);
      expect(ring.color).not.toBe('rgba(0, 0, 0, 0)');
      await answer.getByRole('button', { name: 'Good answer' }).click();
      await expect(answer.getByRole('textbox')).toBeVisible();
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: join(SHOTS, `desktop-conversation-${theme}.png`) });

      await chat.sidebar.getByRole('button', { name: /^Delete / }).first().click();
      await expect(page.getByRole('dialog')).toBeVisible();
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: join(SHOTS, `desktop-delete-dialog-${theme}.png`) });
      await page.getByRole('button', { name: 'Cancel' }).click();

      await page.setViewportSize({ width: 390, height: 844 });
      await expect(chat.sidebar).toBeHidden();
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: join(SHOTS, `phone-conversation-${theme}.png`) });
      await page.getByRole('button', { name: 'Show conversations' }).click();
      await expect(chat.sidebar).toBeVisible();
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: join(SHOTS, `phone-sidebar-${theme}.png`) });
      await page.keyboard.press('Escape');
      await expect(chat.sidebar).toBeHidden();
      await page.getByRole('button', { name: 'New chat', exact: true }).click();
      await expect(page.getByRole('heading', { name: 'How can I help you today?' })).toBeVisible();
      await page.screenshot({ path: join(SHOTS, `phone-welcome-${theme}.png`) });
    });
  }

  test('on a phone the open drawer keeps focus inside until it is closed, then focus returns to the menu button', async ({ chat, page }) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await chat.open();
    const menu = page.getByRole('button', { name: 'Show conversations' });
    await menu.click();
    await expect(chat.sidebar).toBeVisible();
    const inDrawer = () => page.evaluate(() => document.activeElement?.closest('#sidebar') !== null);
    const behind = () => page.evaluate(() => {
      const active = document.activeElement;
      return active !== null && (document.querySelector('main')?.contains(active) === true || active.classList.contains('skip-link'));
    });
    await expect.poll(inDrawer).toBe(true);
    await page.keyboard.press('Tab');
    expect(await inDrawer()).toBe(true);
    // The page behind is inert: Tab and Shift+Tab reach the drawer's controls (and the browser's
    // own, past either end), never the page under it.
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press(i % 3 === 2 ? 'Shift+Tab' : 'Tab');
      expect(await behind()).toBe(false);
    }
    await page.getByRole('button', { name: 'Close conversations' }).click();
    await expect(chat.sidebar).toBeHidden();
    await expect(menu).toBeFocused();
    await page.keyboard.press('Tab');
    expect(await inDrawer()).toBe(false);
  });

  test('on a phone with many files attached the welcome keeps its shape and scrolls from its top', async ({ chat, page }) => {
    await page.setViewportSize({ width: 390, height: 700 });
    await chat.open();
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Attach file', exact: true }).click();
    await (await chooser).setFiles(Array.from({ length: 6 }, (_, i) => ({ name: `notes-${i}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`note ${i}\n`) })));
    await expect(page.getByRole('list', { name: 'Files to send' }).getByRole('listitem')).toHaveCount(6);
    const layout = await page.locator('.welcome').evaluate((welcome) => {
      const mark = welcome.querySelector('.welcome-mark')!.getBoundingClientRect();
      const box = welcome.getBoundingClientRect();
      return { overflows: welcome.scrollHeight > welcome.clientHeight, markWidth: mark.width, markHeight: mark.height, markTop: mark.top - box.top };
    });
    expect(layout.overflows).toBe(true); // the case that squashed the mark and cut it off above the scroll
    expect(layout).toMatchObject({ markWidth: 52, markHeight: 52 });
    expect(layout.markTop).toBeGreaterThanOrEqual(0);
  });

  test('a focused code block shows its whole focus ring, inside the block\'s frame', async ({ chat, page }) => {
    await chat.open();
    await chat.ask('Show me code [code]');
    const answer = await chat.waitForAnswer();
    const pre = answer.locator('.code-block pre').first(); // the conversation's only one
    await expect(pre).toBeVisible();
    // A code block that scrolls sideways takes the keyboard focus (Chromium's focusable scrollers): its ring
    // is the one :focus-visible draws, forced here on the block through the DevTools protocol.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('DOM.enable');
    await cdp.send('CSS.enable');
    const forcedRing = async (): Promise<{ width: number; offset: number; style: string } | undefined> => {
      const { root } = await cdp.send('DOM.getDocument', { depth: -1 });
      const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: '.code-block pre' });
      expect(nodeId).toBeGreaterThan(0);
      // The block may be drawn again meanwhile (highlighted once its grammar loads): its node id is then gone.
      if (!await cdp.send('CSS.forcePseudoState', { nodeId, forcedPseudoClasses: ['focus-visible'] }).then(() => true, () => false)) return undefined;
      return page.locator('.code-block pre').evaluate((el) => {
        const style = getComputedStyle(el);
        return { width: parseFloat(style.outlineWidth), offset: parseFloat(style.outlineOffset), style: style.outlineStyle };
      });
    };
    let ring = await forcedRing();
    for (let i = 0; i < 5 && ring?.style !== 'solid'; i++) {
      await page.waitForTimeout(200);
      ring = await forcedRing();
    }
    await cdp.detach();
    if (!ring) throw new Error('the code block kept being drawn again');
    // Drawn at or inside the block's edge, where the frame's overflow does not clip it.
    expect(ring.style).toBe('solid');
    expect(ring.offset + ring.width).toBeLessThanOrEqual(0);
  });

  test('the sidebar is one Tab stop per conversation; arrows reach the rows and their buttons, F2 and Delete act', async ({ chat, page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await chat.open();
    const first = unique('Keys first');
    const second = unique('Keys second');
    await chat.ask(first);
    await chat.waitForAnswer();
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await chat.ask(second);
    await chat.waitForAnswer();
    const link = (title: string) => chat.sidebar.getByRole('link', { name: title });
    await expect(link(first)).toBeVisible();

    await page.getByRole('searchbox', { name: 'Search conversations' }).focus();
    await page.keyboard.press('Tab');
    await expect(link(second)).toBeFocused();
    // Tab goes on to the next conversation, past this one's buttons.
    await page.keyboard.press('Tab');
    await expect(link(first)).toBeFocused();
    await page.keyboard.press('ArrowUp');
    await expect(link(second)).toBeFocused();
    await page.keyboard.press('ArrowRight');
    const rename = chat.sidebar.getByRole('button', { name: `Rename ${second}` });
    await expect(rename).toBeFocused();
    expect(await rename.evaluate((el) => getComputedStyle(el).outlineStyle)).not.toBe('none');
    await page.keyboard.press('Escape');
    await expect(link(second)).toBeFocused();

    await page.keyboard.press('F2');
    const title = chat.sidebar.getByRole('textbox', { name: 'Conversation title' });
    await expect(title).toBeFocused();
    await page.keyboard.press('Escape');
    await expect(link(second)).toBeFocused();

    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Delete');
    const dialog = page.getByRole('dialog', { name: 'Delete conversation?' });
    await expect(dialog).toBeVisible();
    await expect(dialog).toContainText(first);
    await page.keyboard.press('Escape');
    await expect(dialog).toBeHidden();
    await expect(link(first)).toBeFocused();
    await expect(link(first)).toBeVisible();
  });

  test('the theme toggle overrides the system and is remembered', async ({ chat, page }) => {
    await page.emulateMedia({ colorScheme: 'light' });
    await chat.open();
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
    await page.reload();
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
    await expect(page.getByRole('button', { name: 'Switch to light theme' })).toBeVisible();
  });

  test('on a computer the keyboard starts in the message box, at a conversation\'s address too; not on a phone', async ({ chat, page, browser }) => {
    await chat.open();
    await expect(chat.input).toBeFocused();
    await chat.ask(unique('Opened by its address'));
    await chat.waitForAnswer();
    const url = page.url();
    await page.goto('about:blank');
    await page.goto(url);
    await expect(chat.userMessages).toHaveCount(1);
    await expect(chat.input).toBeFocused();
    // A phone: focusing the box would open the on-screen keyboard over the page.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
    try {
      const phonePage = await phone.newPage();
      await phonePage.goto(new URL('/', url).href);
      await expect(phonePage.getByRole('heading', { name: 'How can I help you today?' })).toBeVisible();
      await expect(phonePage.getByRole('textbox', { name: 'Message' })).not.toBeFocused();
      expect(await phonePage.evaluate(() => document.activeElement === document.body)).toBe(true);
    } finally {
      await phone.close();
    }
  });

  test('works from the keyboard alone, and the answer is announced once, politely', async ({ chat, page }) => {
    await chat.open();
    // The page starts with the keyboard in the message box; the skip link is still the page's first stop (before the
    // sidebar's first link), for a keyboard coming from the browser's own controls.
    await expect(chat.input).toBeFocused();
    await page.getByRole('link', { name: 'Parley' }).focus();
    await page.keyboard.press('Shift+Tab');
    await expect(page.getByRole('button', { name: 'Skip to message input' })).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(chat.input).toBeFocused();
    const prompt = unique('Keyboard only');
    await page.keyboard.type(prompt);
    await page.keyboard.press('Enter');
    await chat.waitForAnswer();
    await expect(chat.input).toBeFocused();
    const status = page.locator('[role="status"][aria-live="polite"]').filter({ hasText: 'Answer:' });
    await expect(status).toHaveText(`Answer: Hello! You said: ${prompt}`);

    // Shift+Tab from the input reaches the message actions; Enter activates Regenerate.
    const regenerate = page.getByRole('button', { name: 'Regenerate', exact: true });
    for (let i = 0; i < 10 && !(await regenerate.evaluate((el) => el === document.activeElement)); i++) {
      await page.keyboard.press('Shift+Tab');
    }
    await expect(regenerate).toBeFocused();
    const outline = await regenerate.evaluate((el) => getComputedStyle(el).outlineStyle);
    expect(outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await expect(chat.lastAnswer()).toContainText('(attempt 2)');
  });
});
