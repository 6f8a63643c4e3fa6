import { UrlSegment } from '@angular/router';
import { chatMatcher } from './app.routes';

const segments = (...paths: string[]): UrlSegment[] => paths.map((p) => new UrlSegment(p, {}));

describe('chatMatcher', () => {
  it('matches the new chat and a conversation with one route', () => {
    expect(chatMatcher(segments())).toEqual({ consumed: [] });
    const match = chatMatcher(segments('c', 'abc'));
    expect(match?.posParams?.['id']?.path).toBe('abc');
  });

  it('leaves other paths to the fallback', () => {
    expect(chatMatcher(segments('c'))).toBeNull();
    expect(chatMatcher(segments('x', 'y'))).toBeNull();
    expect(chatMatcher(segments('c', 'a', 'b'))).toBeNull();
  });
});
