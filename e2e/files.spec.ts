import { FILE_MARKER } from './support/fake-openai';
import { allowConsoleErrors, expect, test, unique } from './support/fixtures';

test.describe('attachments', () => {
  test('attach by button: progress, chip with name and size, extracted text, then send', async ({ chat, page }) => {
    await chat.open();
    const content = `Meeting notes\n${FILE_MARKER}\nAction items follow.\n`;
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Attach file', exact: true }).click();
    await (await chooser).setFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(content) });

    const tray = page.getByRole('list', { name: 'Files to send' });
    const chip = tray.getByRole('listitem').filter({ hasText: 'notes.txt' });
    await expect(chip).toContainText(`${content.length} B`);
    await page.getByRole('button', { name: 'Show text of notes.txt' }).click();
    const dialog = page.getByRole('dialog', { name: 'notes.txt' });
    await expect(dialog.getByLabel('Extracted text')).toContainText(FILE_MARKER);
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect(dialog).toBeHidden();

    await chat.ask('What does the file say? [file]');
    const answer = await chat.waitForAnswer();
    await expect(answer).toContainText(`The file says ${FILE_MARKER}.`);
    await expect(chat.userMessages.last().getByRole('list', { name: 'Attached files' })).toContainText('notes.txt');
    await expect(tray).toBeHidden();
    await page.reload();
    await expect(chat.userMessages.last()).toContainText('notes.txt');
  });

  test('sends a file without a question: its chip is the message, and it names the conversation', async ({ chat, page }) => {
    await chat.open();
    const name = `${unique('report').replace(/\W+/g, '-')}.txt`;
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Attach file', exact: true }).click();
    await (await chooser).setFiles({ name, mimeType: 'text/plain', buffer: Buffer.from(`Quarterly figures [file]\n${FILE_MARKER}\n`) });
    await expect(page.getByRole('button', { name: `Show text of ${name}` })).toBeVisible();
    await expect(chat.input).toHaveAttribute('placeholder', 'Ask something about the files, or send them as they are');
    await expect(page.getByRole('button', { name: 'Send', exact: true })).toBeEnabled();
    await chat.input.press('Enter');
    await expect(page).toHaveURL(/\/c\/[0-9a-f-]{36}$/);
    const answer = await chat.waitForAnswer();
    await expect(answer).toContainText(`The file says ${FILE_MARKER}.`);
    const question = chat.userMessages.last();
    await expect(question.getByRole('list', { name: 'Attached files' })).toContainText(name);
    // No empty bubble, nothing to copy: the chip is the message.
    await expect(question.locator('.msg-text')).toHaveCount(0);
    await expect(question.getByRole('button', { name: 'Copy message' })).toHaveCount(0);
    await expect(chat.sidebar.getByRole('link', { name })).toBeVisible();
    await page.reload();
    await expect(chat.userMessages.last().getByRole('list', { name: 'Attached files' })).toContainText(name);
  });

  test('a draft and its files stay with their conversation: switching never carries them into another', async ({ chat, page }) => {
    await chat.open();
    await chat.ask(unique('Alpha topic'));
    await chat.waitForAnswer();
    const alphaUrl = page.url();
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await chat.ask(unique('Beta topic'));
    await chat.waitForAnswer();
    const betaUrl = page.url();

    await chat.input.fill('draft meant for beta');
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Attach file', exact: true }).click();
    await (await chooser).setFiles({ name: 'beta-notes.txt', mimeType: 'text/plain', buffer: Buffer.from('for beta only') });
    const tray = page.getByRole('list', { name: 'Files to send' });
    await expect(tray.getByRole('listitem')).toHaveCount(1);

    await chat.sidebar.getByRole('link', { name: /Alpha topic/ }).click();
    await expect(page).toHaveURL(alphaUrl);
    await expect(chat.input).toHaveValue('');
    await expect(tray).toBeHidden();
    await chat.input.fill('alpha words');
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await expect(chat.input).toHaveValue('');

    await chat.sidebar.getByRole('link', { name: /Beta topic/ }).click();
    await expect(page).toHaveURL(betaUrl);
    await expect(chat.input).toHaveValue('draft meant for beta');
    await expect(tray.getByRole('listitem').filter({ hasText: 'beta-notes.txt' })).toBeVisible();
    await chat.sidebar.getByRole('link', { name: /Alpha topic/ }).click();
    await expect(chat.input).toHaveValue('alpha words');
  });

  test('a draft\'s uploaded files are still attached after a reload, and are sent with it', async ({ chat, page }) => {
    await chat.open();
    await chat.input.fill('What do these say? [file]');
    const chooser = page.waitForEvent('filechooser');
    await page.getByRole('button', { name: 'Attach file', exact: true }).click();
    await (await chooser).setFiles([
      { name: 'kept.txt', mimeType: 'text/plain', buffer: Buffer.from(`Kept across a reload\n${FILE_MARKER}\n`) },
      { name: 'dropped.txt', mimeType: 'text/plain', buffer: Buffer.from('removed before the reload') },
    ]);
    const tray = page.getByRole('list', { name: 'Files to send' });
    await expect(page.getByRole('button', { name: 'Show text of kept.txt' })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Show text of dropped.txt' })).toBeVisible();
    await page.getByRole('button', { name: 'Remove dropped.txt' }).click();
    await expect(tray.getByRole('listitem')).toHaveCount(1);

    await page.reload();
    await expect(chat.input).toHaveValue('What do these say? [file]');
    await expect(tray.getByRole('listitem')).toHaveCount(1);
    await page.getByRole('button', { name: 'Show text of kept.txt' }).click();
    const dialog = page.getByRole('dialog', { name: 'kept.txt' });
    await expect(dialog.getByLabel('Extracted text')).toContainText(FILE_MARKER);
    await dialog.getByRole('button', { name: 'Close' }).click();

    await chat.input.press('Enter');
    const answer = await chat.waitForAnswer();
    await expect(answer).toContainText(`The file says ${FILE_MARKER}.`);
    await expect(chat.userMessages.last().getByRole('list', { name: 'Attached files' })).toContainText('kept.txt');
    await expect(tray).toBeHidden();
    // Sent: not attached again after another reload.
    await page.reload();
    await expect(chat.userMessages.last()).toContainText('kept.txt');
    await expect(tray).toBeHidden();
  });

  test('a file gone from the server before the send (never sent in time): the send is refused, the chip says why, the text is kept', async ({ chat, page }) => {
    allowConsoleErrors(page, /status of 404/);
    await chat.open();
    await chat.input.fill('Read the file please');
    const uploaded = page.waitForResponse((r) => r.url().endsWith('/api/v1/files/upload') && r.status() === 201);
    await page.locator('input[type=file]').setInputFiles({ name: 'expired.txt', mimeType: 'text/plain', buffer: Buffer.from('soon gone') });
    const { file_id: fileId } = await (await uploaded).json() as { file_id: string };
    await expect(page.getByRole('button', { name: 'Show text of expired.txt' })).toBeVisible();
    // What the sweep does to a file not sent within UNSENT_FILE_TTL_HOURS.
    expect((await page.request.delete(`/api/v1/files/${fileId}`)).status()).toBe(204);

    await chat.input.press('Enter');
    const tray = page.getByRole('list', { name: 'Files to send' });
    await expect(tray.getByRole('listitem').filter({ hasText: 'expired.txt' })).toContainText('no longer on the server');
    await expect(chat.input).toHaveValue('Read the file please');
    await expect(chat.userMessages).toHaveCount(0);
    // Sent again, it goes without the file.
    await chat.input.press('Enter');
    await chat.waitForAnswer();
    await expect(chat.userMessages.last().getByRole('list', { name: 'Attached files' })).toHaveCount(0);
  });

  test('pasting a file into the message box attaches it', async ({ chat, page }) => {
    await chat.open();
    await chat.input.focus();
    await chat.input.evaluate((el) => {
      const data = new DataTransfer();
      data.items.add(new File(['pasted text'], 'clip.txt', { type: 'text/plain' }));
      el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    });
    await expect(page.getByRole('list', { name: 'Files to send' })).toContainText('clip.txt');
    await expect(page.getByRole('button', { name: 'Show text of clip.txt' })).toBeVisible();
    await expect(chat.input).toHaveValue('');
  });

  test('shows upload progress for a larger file', async ({ chat, page }) => {
    await chat.open();
    // Slow the upload down so the uploading state is observable.
    await page.route('**/api/v1/files/upload', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 800));
      await route.continue();
    });
    await page.locator('input[type=file]').setInputFiles({ name: 'big.md', mimeType: 'text/markdown', buffer: Buffer.from('# Big\n'.repeat(5000)) });
    // "Uploading" while bytes go, "Reading the text of" once all are sent and the server extracts.
    await expect(page.getByRole('progressbar', { name: /^(Uploading|Reading the text of) big\.md$/ })).toBeVisible();
    await expect(chat.send).toBeDisabled();
    await expect(page.getByRole('button', { name: 'Show text of big.md' })).toBeVisible();
    await expect(page.getByRole('progressbar')).toHaveCount(0);
  });

  test('drag and drop attaches; refused files say why', async ({ chat, page }) => {
    await chat.open();
    const drop = async (name: string, mimeType: string, text: string): Promise<void> => {
      const transfer = await page.evaluateHandle(({ name, mimeType, text }) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], name, { type: mimeType }));
        return dt;
      }, { name, mimeType, text });
      const target = page.locator('app-chat-view');
      await target.dispatchEvent('dragenter', { dataTransfer: transfer });
      await expect(page.getByText('Drop files to attach them')).toBeVisible();
      await target.dispatchEvent('drop', { dataTransfer: transfer });
      await expect(page.getByText('Drop files to attach them')).toBeHidden();
    };
    await drop('data.json', 'application/json', '{"a": 1}');
    await expect(page.getByRole('button', { name: 'Show text of data.json' })).toBeVisible();

    await drop('virus.exe', 'application/octet-stream', 'MZ');
    await expect(page.getByRole('alert').filter({ hasText: 'virus.exe' })).toContainText('This file type is not supported. Allowed: .txt');

    await drop('huge.txt', 'text/plain', 'x'.repeat(70 * 1024));
    await expect(page.getByRole('alert').filter({ hasText: 'huge.txt' })).toContainText('too large (70 KB). The limit is 64 KB.');

    await page.screenshot({ path: `${__dirname}/artifacts/screenshots/desktop-attachments.png` });
    // A refused file can be removed; the good one stays.
    await page.getByRole('button', { name: 'Remove virus.exe' }).click();
    await expect(page.getByText('virus.exe')).toHaveCount(0);
    await expect(page.getByRole('button', { name: 'Show text of data.json' })).toBeVisible();
  });

  test('a refused file\'s whole reason can be read without hovering, on a phone too', async ({ chat, page }) => {
    for (const size of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
      await page.setViewportSize(size);
      await chat.open();
      await page.locator('input[type=file]').setInputFiles({ name: 'installer-with-a-long-name.exe', mimeType: 'application/octet-stream', buffer: Buffer.from('MZ') });
      const reason = page.locator('.chip-error');
      await expect(reason).toContainText('This file type is not supported. Allowed: .txt');
      // All of it on screen: nothing cut off by an ellipsis or the chip's edge, and the chip inside the page.
      const shown = await reason.evaluate((el) => {
        const box = el.getBoundingClientRect();
        return { isCut: el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1, right: box.right };
      });
      expect(shown.isCut, `${size.width} px`).toBe(false);
      expect(shown.right).toBeLessThanOrEqual(size.width);
      await page.screenshot({ path: `${__dirname}/artifacts/screenshots/${size.width < 768 ? 'phone' : 'desktop'}-refused-file.png` });
      await page.getByRole('button', { name: 'Remove installer-with-a-long-name.exe' }).click();
    }
  });

  test('says over the answer that only the beginning of a file too big for the model\'s context was read', async ({ chat, page }) => {
    await chat.open();
    // About 28,000 tokens in 56 KB (the upload limit here is 64 KB); the model's context is 16,000.
    const long = Array.from({ length: 28_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(' ');
    await page.locator('input[type=file]').setInputFiles({ name: 'server-log.txt', mimeType: 'text/plain', buffer: Buffer.from(long) });
    await expect(page.getByRole('button', { name: 'Show text of server-log.txt' })).toBeVisible();
    await chat.ask(unique('What happened at the end?'));
    const answer = await chat.waitForAnswer();
    await expect(answer.locator('.msg-context-note'))
      .toHaveText('Only the beginning of server-log.txt fit in the model\'s context: it did not see the rest.');
    await expect(chat.userMessages.last().getByRole('list', { name: 'Attached files' })).toContainText('server-log.txt');
    // Stored with the answer: said the same after a reload.
    await page.reload();
    await expect((await chat.waitForAnswer()).locator('.msg-context-note'))
      .toHaveText('Only the beginning of server-log.txt fit in the model\'s context: it did not see the rest.');
  });

  test('a file the server refuses shows the server reason', async ({ chat, page }) => {
    allowConsoleErrors(page, /status of 422/);
    await chat.open();
    await page.route('**/api/v1/files/upload', (route) => route.fulfill({
      status: 422,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'FILE_PROCESSING_ERROR', message: 'The PDF is encrypted.', timestamp: new Date().toISOString(), request_id: 'r' } }),
    }));
    await page.locator('input[type=file]').setInputFiles({ name: 'locked.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.7 locked') });
    await expect(page.getByRole('alert').filter({ hasText: 'locked.pdf' }))
      .toContainText('The text of this file could not be read: The PDF is encrypted.');
    await expect(chat.send).toBeDisabled();
  });
});
