import { IMAGE_HOST } from './support/fake-openai';
import { expect, test } from './support/fixtures';

test('hostile model output stays inert, live and after reload', async ({ chat, page }) => {
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  const imageRequests: string[] = [];
  page.on('request', (request) => {
    if (request.url().includes(IMAGE_HOST)) imageRequests.push(request.url());
  });

  const check = async (): Promise<void> => {
    const answer = chat.lastAnswer();
    await expect(answer).toContainText('End of hostile reply.');
    const markdown = answer.locator('.markdown');
    // Raw HTML is shown as text, never as elements.
    await expect(markdown).toContainText('<script>alert("script-xss")</script>');
    await expect(markdown.locator('script, img, iframe, [onerror], [onclick]')).toHaveCount(0);
    await expect(page.locator(`img[src*="${IMAGE_HOST}"]`)).toHaveCount(0);
    // The javascript: and data: links keep their text but lose their href.
    await expect(markdown.getByText('click me')).toBeVisible();
    await expect(markdown.locator('a[href^="javascript:" i], a[href^="data:" i]')).toHaveCount(0);
    // The remote image is a link, which opens without opener or referrer.
    const imageLink = markdown.getByRole('link', { name: '[image: tracking pixel]' });
    await expect(imageLink).toHaveAttribute('rel', 'noopener noreferrer');
    await expect(imageLink).toHaveAttribute('target', '_blank');
    // Clicking where the script link was does nothing.
    await markdown.getByText('click me').click();
  };

  await chat.open();
  await chat.ask('Be hostile [xss]');
  await chat.waitForAnswer();
  await check();
  await page.reload();
  await check();
  expect(dialogs).toEqual([]);
  expect(imageRequests).toEqual([]);
});
