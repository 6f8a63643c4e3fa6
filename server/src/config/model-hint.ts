import type { AppConfig } from './app-config.js';

/**
 * A warning for a model setting that is valid but most likely not meant: a base URL of one's own server (Ollama, vLLM,
 * llama.cpp) without OPENAI_MODEL asks it for the official API's default model, which it seldom serves; every answer
 * then fails with the server's 404. Undefined when there is nothing to say.
 */
export function modelHint(env: NodeJS.ProcessEnv, llm: AppConfig['llm']): string | undefined {
  if (llm.provider !== 'openai' || !llm.baseUrl || env.OPENAI_MODEL) return undefined;
  return `OPENAI_BASE_URL is set without OPENAI_MODEL: answers ask that server for ${llm.model}; set OPENAI_MODEL to a model it serves`;
}
