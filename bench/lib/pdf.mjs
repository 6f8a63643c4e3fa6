// Generates a text PDF of N pages with pdf-lib (about 2.5 KB of text per page).
import { PDFDocument, StandardFonts } from 'pdf-lib';

export async function makePdf(pages) {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (let p = 0; p < pages; p++) {
    const page = doc.addPage([595, 842]);
    page.drawText(`Chapter ${p + 1}: how the relay keeps every token`, { x: 50, y: 790, size: 14, font });
    for (let l = 0; l < 40; l++) {
      page.drawText(`Line ${l + 1} of page ${p + 1}: the generation runs in a service and persists itself in batches.`,
        { x: 50, y: 760 - l * 17, size: 10, font });
    }
  }
  return Buffer.from(await doc.save());
}
