import { randomBytes } from 'node:crypto';
import { PDFDocument, PDFHexString, StandardFonts } from 'pdf-lib';

/** A PDF whose page n has `lines` lines of `text(n, line)` (real, extractable text). */
export async function makePdf(pages: number, lines: number, text: (page: number, line: number) => string): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (let n = 1; n <= pages; n++) {
    const page = doc.addPage([612, 792]);
    for (let l = 0; l < lines; l++) page.drawText(text(n, l), { x: 40, y: 740 - l * 15, size: 10, font });
  }
  return Buffer.from(await doc.save());
}

/** What a password-protected PDF looks like to a reader without the password. */
export async function makeEncryptedPdf(): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  doc.addPage().drawText('top secret', { x: 50, y: 700, font });
  const ctx = doc.context;
  const hex = (n: number) => PDFHexString.of(randomBytes(n).toString('hex'));
  ctx.trailerInfo.Encrypt = ctx.register(ctx.obj({ Filter: 'Standard', V: 1, R: 2, Length: 40, P: -44, O: hex(32), U: hex(32) }));
  const id = hex(16);
  ctx.trailerInfo.ID = ctx.obj([id, id]);
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}
