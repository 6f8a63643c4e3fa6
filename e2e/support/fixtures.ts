import { randomUUID } from 'node:crypto';
import { test as base, expect, type Locator, type Page } from '@playwright/test';
import { FAKE_OPENAI_PORT } from './ports';

/** A prompt no other test (or repetition) sends: the fake upstream counts attempts per prompt. */
export function unique(text: string): string {
  return `${text} #${randomUUID().slice(0, 8)}`;
}

/**
 * An answer that pauses after its first words (w01 … w08, see HELD_TOKENS) until `release()`: a test acts while it
 * runs without racing a timer. `marker` goes in the prompt; the full answer is numberedWords(60).
 */
export function heldAnswer(): { marker: string; release: () => Promise<void> } {
  const key = randomUUID().slice(0, 8);
  return {
    marker: `[held:${key}]`,
    release: async () => {
      const res = await fetch(`http://127.0.0.1:${FAKE_OPENAI_PORT}/__control/release/${key}`, { method: 'POST' });
      expect(res.status).toBe(204);
    },
  };
}

/** The app as a user sees it: roles and accessible names, as the issue defines them. */
export class ChatPage {
  readonly input: Locator;
  readonly send: Locator;
  readonly stop: Locator;
  readonly answers: Locator;
  readonly userMessages: Locator;
  readonly sidebar: Locator;

  constructor(readonly page: Page) {
    this.input = page.getByRole('textbox', { name: 'Message' });
    this.send = page.getByRole('button', { name: 'Send', exact: true });
    this.stop = page.getByRole('button', { name: 'Stop', exact: true });
    this.answers = page.getByRole('article', { name: 'Answer' });
    this.userMessages = page.getByRole('article', { name: 'Your message' });
    this.sidebar = page.getByRole('navigation', { name: 'Conversations' });
  }

  async open(path = '/'): Promise<void> {
    await this.page.goto(path);
    await expect(this.input).toBeVisible();
  }

  /** Types and sends with Enter; resolves once the conversation has its URL. */
  async ask(text: string): Promise<void> {
    await this.input.fill(text);
    await this.input.press('Enter');
    await expect(this.page).toHaveURL(/\/c\/[0-9a-f-]{36}$/);
  }

  /** Sends another message in the open conversation; resolves once it is shown (not just typed). */
  async followUp(text: string): Promise<void> {
    const count = await this.userMessages.count();
    await this.input.fill(text);
    await this.input.press('Enter');
    await expect(this.userMessages).toHaveCount(count + 1);
  }

  /** A new conversation of `count` questions "Answer 1 <marker>" … "Answer <count> <marker>", each answered. */
  async converse(count: number, marker: string): Promise<void> {
    await this.ask(unique(`Answer 1 ${marker}`));
    await this.waitForAnswer();
    for (let n = 2; n <= count; n++) {
      await this.followUp(`Answer ${n} ${marker}`);
      await this.waitForAnswer();
    }
  }

  lastAnswer(): Locator {
    return this.answers.last();
  }

  /** Waits until the last answer has finished with the given status. */
  async waitForAnswer(status: 'complete' | 'stopped' | 'failed' | 'interrupted' = 'complete'): Promise<Locator> {
    const answer = this.lastAnswer();
    await expect(answer).toHaveAttribute('data-status', status, { timeout: 20_000 });
    await expect(answer).not.toHaveAttribute('aria-busy', 'true');
    return answer;
  }

  conversationId(): string {
    const match = /\/c\/([0-9a-f-]{36})$/.exec(this.page.url());
    if (!match?.[1]) throw new Error(`Not on a conversation URL: ${this.page.url()}`);
    return match[1];
  }
}

interface Fixtures {
  chat: ChatPage;
  consoleGuard: undefined;
}

const allowedErrors = new WeakMap<Page, RegExp[]>();

/** Lets a test expect console errors matching `pattern` (e.g. Chromium logs a mocked 429 response). */
export function allowConsoleErrors(page: Page, pattern: RegExp): void {
  allowedErrors.set(page, [...(allowedErrors.get(page) ?? []), pattern]);
}

export const test = base.extend<Fixtures>({
  chat: async ({ page }, use) => {
    await use(new ChatPage(page));
  },
  // Every test fails on a console error or an uncaught page error (CSP violations included) unless allowed.
  consoleGuard: [async ({ page }, use) => {
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    await use(undefined);
    const allowed = allowedErrors.get(page) ?? [];
    const unexpected = errors.filter((text) => !allowed.some((p) => p.test(text)));
    expect(unexpected, 'console errors').toEqual([]);
  }, { auto: true }],
});

export { expect };
