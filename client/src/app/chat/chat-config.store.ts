import { Injectable, computed, inject, signal } from '@angular/core';
import type { ChatConfig } from '../core/api-models';
import { ChatApi } from './chat-api.service';

/** What the server says about the model and the limits; loaded once at start. */
@Injectable({ providedIn: 'root' })
export class ChatConfigStore {
  private readonly api = inject(ChatApi);
  private readonly value = signal<ChatConfig | null>(null);
  readonly config = this.value.asReadonly();
  readonly isDemo = computed(() => {
    const config = this.value();
    return config !== null && (config.is_demo || config.provider === 'offline');
  });
  readonly model = computed(() => this.value()?.model ?? '');
  readonly maxMessageChars = computed(() => this.value()?.max_message_chars ?? 32_000);

  async load(): Promise<void> {
    this.value.set(await this.api.config());
  }
}
