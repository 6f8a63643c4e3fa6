/**
 * The least time between two draws of a streaming answer: 20 a second. Each draw re-renders the
 * open Markdown block and makes the browser restyle, lay out, paint and composite the growing
 * page; drawing every frame (60 a second) tripled that work for no visible gain in how the text
 * flows (bench scenario 7).
 */
export const STREAM_DRAW_INTERVAL_MS = 50;
/** About one frame: a draw waits for the frame that follows its timer. */
const FRAME_MS = 16;

/**
 * Runs `fn` before the next paint (once per frame), or after a short timer where frames do not
 * come (a hidden tab, no requestAnimationFrame). Returns its cancel.
 */
function beforeNextFrame(fn: () => void): () => void {
  if (typeof requestAnimationFrame === 'function' && typeof document !== 'undefined' && document.visibilityState === 'visible') {
    const handle = requestAnimationFrame(fn);
    return () => cancelAnimationFrame(handle);
  }
  const timer = setTimeout(fn, FRAME_MS);
  return () => clearTimeout(timer);
}

/**
 * Tokens received and not drawn yet, and the message they belong to. A fast model sends more
 * tokens than the screen has frames (250 a second against 60); each update of the message
 * re-renders its open Markdown block (lexing, sanitizing, the DOM), so tokens are handed to `draw`
 * in a frame at most every STREAM_DRAW_INTERVAL_MS. Anything that reads or ends the message first
 * takes them in (`flush`).
 */
export class TokenDrawer {
  private pending = '';
  private pendingFor: string | null = null;
  private cancelFrame: (() => void) | null = null;
  private lastDrawAt = -Infinity;

  /** `draw` appends `text` to message `messageId`. */
  constructor(private readonly draw: (messageId: string, text: string) => void) {}

  append(messageId: string, text: string): void {
    if (this.pendingFor !== messageId) this.flush();
    this.pendingFor = messageId;
    this.pending += text;
    this.cancelFrame ??= this.schedule();
  }

  /** Hands the tokens not drawn yet to `draw`, now. */
  flush(): void {
    this.cancelFrame?.();
    this.cancelFrame = null;
    const id = this.pendingFor;
    const text = this.pending;
    this.pendingFor = null;
    this.pending = '';
    if (id === null || text === '') return;
    this.lastDrawAt = performance.now();
    this.draw(id, text);
  }

  /** Draws the pending tokens in the first frame at least STREAM_DRAW_INTERVAL_MS after the last draw. */
  private schedule(): () => void {
    const onFrame = (): void => {
      this.cancelFrame = null;
      this.flush();
    };
    const wait = this.lastDrawAt + STREAM_DRAW_INTERVAL_MS - FRAME_MS - performance.now();
    if (wait <= 0) return beforeNextFrame(onFrame);
    let cancel = (): void => clearTimeout(timer);
    const timer = setTimeout(() => (cancel = beforeNextFrame(onFrame)), wait);
    return () => cancel();
  }
}
