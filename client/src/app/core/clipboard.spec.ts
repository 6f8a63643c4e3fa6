import { copyText } from './clipboard';

describe('copyText outside a secure context (a plain-http LAN install)', () => {
  let execCommand: ReturnType<typeof vi.fn>;
  let copied: string | undefined;

  beforeEach(() => {
    copied = undefined;
    vi.stubGlobal('isSecureContext', false);
    // What the browser copies: the selected text at the time of the command.
    execCommand = vi.fn(() => {
      const area = document.querySelector('textarea');
      copied = area?.value.slice(area.selectionStart, area.selectionEnd);
      return true;
    });
    Object.defineProperty(document, 'execCommand', { value: execCommand, configurable: true });
  });

  afterEach(() => {
    vi.unstubAllGlobals();
    delete (document as { execCommand?: unknown }).execCommand;
  });

  it('copies through a selection and gives the focus back to the button that copied, leaving nothing behind', async () => {
    const button = document.createElement('button');
    button.textContent = 'Copy code';
    document.body.append(button);
    button.focus();
    expect(await copyText('def greet(name): ...')).toBe(true);
    expect(execCommand).toHaveBeenCalledWith('copy');
    expect(copied).toBe('def greet(name): ...');
    expect(document.activeElement).toBe(button);
    expect(document.querySelector('textarea')).toBeNull();
    button.remove();
  });

  it('says so when the browser refuses the copy', async () => {
    execCommand.mockReturnValue(false);
    expect(await copyText('x')).toBe(false);
    expect(document.querySelector('textarea')).toBeNull();
  });
});
