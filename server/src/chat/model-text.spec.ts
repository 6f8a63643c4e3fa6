import { ModelText } from './model-text.js';

describe('ModelText', () => {
  it('drops NULs and makes unpaired surrogates U+FFFD', () => {
    const text = new ModelText();
    expect(text.push('a\u0000b')).toBe('ab');
    expect(text.push('c\udc00d')).toBe('c\ufffdd');
    expect(text.push('e\ud800f')).toBe('e\ufffdf');
    expect(text.push('\u0000')).toBe('');
    expect(text.end()).toBe('');
  });

  it('keeps a surrogate pair split between two tokens', () => {
    const text = new ModelText();
    expect(text.push('smile \ud83d')).toBe('smile ');
    expect(text.push('\ude00!')).toBe('\ud83d\ude00!');
  });

  it('ends a reply whose last token is half a pair with U+FFFD', () => {
    const text = new ModelText();
    expect(text.push('x\ud83d')).toBe('x');
    expect(text.push('\ud83d')).toBe('\ufffd');
    expect(text.end()).toBe('\ufffd');
    expect(text.end()).toBe('');
  });

  it('passes ordinary text through unchanged', () => {
    const text = new ModelText();
    const s = 'Grüße, 世界 👋\n```js\nx = 1;\n```';
    expect(text.push(s)).toBe(s);
  });
});
