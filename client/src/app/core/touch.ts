/**
 * Whether the main pointer is a finger. Asked at each use: a tablet may gain a mouse. On such a device an
 * on-screen keyboard has no Shift+Enter, and focusing a textbox opens the keyboard over half the screen.
 */
export function isTouchFirst(): boolean {
  return typeof window.matchMedia === 'function' && window.matchMedia('(pointer: coarse)').matches;
}

/**
 * Whether the page may put the keyboard in a textbox by itself (when it loads): a computer's screen, with a mouse or
 * a trackpad. On a phone or a touch screen that would open the on-screen keyboard over half the page.
 */
export function isDesktopLike(): boolean {
  return typeof window.matchMedia === 'function' && window.matchMedia('(pointer: fine) and (min-width: 768px)').matches;
}
