import {
  type ApplicationConfig, inject, provideAppInitializer, provideBrowserGlobalErrorListeners, provideZonelessChangeDetection,
} from '@angular/core';
import { provideRouter, withComponentInputBinding } from '@angular/router';
import { routes } from './app.routes';
import { ChatConfigStore } from './chat/chat-config.store';
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
      // A gated deployment without a session shows the token form first; the shell loads the config after it.
      return api.bootstrap().then(() => (api.needsAccessToken() || api.needsSignIn() ? undefined : config.load())).catch((error: unknown) => {
        toasts.error(friendlyMessage(error), { key: 'config' });
      });
    }),
  ],
};
