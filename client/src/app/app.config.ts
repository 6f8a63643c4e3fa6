import {
  type ApplicationConfig, inject, provideAppInitializer, provideBrowserGlobalErrorListeners, provideZonelessChangeDetection,
} from '@angular/core';
import { provideRouter, withComponentInputBinding } from '@angular/router';
import { routes } from './app.routes';
import { ChatConfigStore } from './chat/chat-config.store';
import { MarkdownRenderer } from './chat/markdown-renderer';
import { ApiClient } from './core/api-client';
import { friendlyMessage } from './core/api-error';
import { ThemeService } from './shell/theme.service';
import { ToastService } from './shell/toast.service';

export const appConfig: ApplicationConfig = {
  providers: [
    provideBrowserGlobalErrorListeners(),
    provideZonelessChangeDetection(),
    provideRouter(routes, withComponentInputBinding()),
    // The first call creates the session cookie; every later request then carries it (no racing 401s).
    provideAppInitializer(() => {
      inject(ThemeService);
      const toasts = inject(ToastService);
      const api = inject(ApiClient);
      const config = inject(ChatConfigStore);
      // The Markdown engine, a chunk of its own, is fetched meanwhile: the first messages drawn are rendered. Without
      // it (a failed fetch) they show as text until a later try brings it (markdown-renderer.ts).
      const markdown = inject(MarkdownRenderer).whenReady().catch(() => undefined);
      // A gated deployment without a session shows the token form first; the shell loads the config after it.
      const session = api.bootstrap().then(() => (api.needsAccessToken() || api.needsSignIn() ? undefined : config.load())).catch((error: unknown) => {
        toasts.error(friendlyMessage(error), { key: 'config' });
      });
      return Promise.all([session, markdown]).then(() => undefined);
    }),
  ],
};
