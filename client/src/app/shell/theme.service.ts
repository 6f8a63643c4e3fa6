import { Injectable, computed, signal } from '@angular/core';

export type ThemeChoice = 'system' | 'light' | 'dark';
const STORAGE_KEY = 'parley.theme';

/** Follows the system until the user picks a theme; the choice is kept in localStorage. */
@Injectable({ providedIn: 'root' })
export class ThemeService {
  private readonly choice = signal<ThemeChoice>(this.readChoice());
  private readonly systemDark = signal(this.mediaQuery()?.matches ?? false);
  readonly theme = this.choice.asReadonly();
  readonly isDark = computed(() => this.choice() === 'dark' || (this.choice() === 'system' && this.systemDark()));

  constructor() {
    this.mediaQuery()?.addEventListener('change', (e) => {
      this.systemDark.set(e.matches);
      this.apply();
    });
    this.apply();
  }

  /** Switches to the opposite of what is shown now. */
  toggle(): void {
    this.set(this.isDark() ? 'light' : 'dark');
  }

  set(choice: ThemeChoice): void {
    this.choice.set(choice);
    try {
      if (choice === 'system') localStorage.removeItem(STORAGE_KEY);
      else localStorage.setItem(STORAGE_KEY, choice);
    } catch {
      // Storage can be disabled (private mode); the theme still applies for this visit.
    }
    this.apply();
  }

  private apply(): void {
    const root = document.documentElement;
    root.dataset['theme'] = this.isDark() ? 'dark' : 'light';
  }

  private readChoice(): ThemeChoice {
    try {
      const stored = localStorage.getItem(STORAGE_KEY);
      return stored === 'light' || stored === 'dark' ? stored : 'system';
    } catch {
      return 'system';
    }
  }

  private mediaQuery(): MediaQueryList | undefined {
    return typeof window.matchMedia === 'function' ? window.matchMedia('(prefers-color-scheme: dark)') : undefined;
  }
}
