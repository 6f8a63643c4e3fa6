import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './app-config.js';
import { modelHint } from './model-hint.js';

describe('modelHint', () => {
  const hintFor = (env: NodeJS.ProcessEnv): string | undefined => modelHint(env, loadConfig({ DATA_DIR: mkdtempSync(join(tmpdir(), 'parley-hint-')), ...env }).llm);

  it('warns when a base URL of one\'s own comes without a model name', () => {
    expect(hintFor({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }))
      .toBe('OPENAI_BASE_URL is set without OPENAI_MODEL: answers ask that server for gpt-4o-mini; set OPENAI_MODEL to a model it serves');
  });

  it('says nothing with a model name, for the official API, or offline', () => {
    expect(hintFor({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', OPENAI_MODEL: 'llama3.2' })).toBeUndefined();
    expect(hintFor({ OPENAI_API_KEY: 'sk-x' })).toBeUndefined();
    expect(hintFor({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', LLM_PROVIDER: 'offline' })).toBeUndefined();
  });
});
