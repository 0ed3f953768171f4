/**
 * A minimal PDF 1.4 writer for text reports: pages of text in the standard Helvetica fonts
 * (no embedding), lines wrapped to the page, Markdown headings (`#`, `##`) and `**bold**`
 * lines set in bold, a page number in each footer. Enough for a report a playbook mails or
 * stores; written here rather than taken from a library because that is all reports need
 * (pdfkit and pdf-lib bring font parsing, images and forms we would not use, and pdf-lib has not
 * been released since 2021). Text outside Windows-1252 is replaced by `?`, as the standard fonts
 * cannot show it.
 */

const PAGE = { width: 595.28, height: 841.89, margin: 56 }; // A4 in points
const SIZES = { body: 10.5, h1: 16, h2: 13, h3: 11.5 };

interface Line {
  text: string;
  size: number;
  bold: boolean;
}

/** Helvetica's advance widths are close to 0.5 em on average for mixed text; wrap on that estimate, with a margin. */
const charsPerLine = (size: number) => Math.floor((PAGE.width - 2 * PAGE.margin) / (size * 0.52));

function wrap(text: string, width: number): string[] {
  if (text.length <= width) return [text];
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/(\s+)/)) {
    if ((line + word).length > width && line.trim() !== '') {
      out.push(line.trimEnd());
      line = word.trimStart();
    } else line += word;
    while (line.length > width) {
      out.push(line.slice(0, width));
      line = line.slice(width);
    }
  }
  if (line.trim() !== '') out.push(line.trimEnd());
  return out;
}

function layout(text: string): Line[] {
  const lines: Line[] = [];
  for (const raw of text.replace(/\r\n?/g, '\n').split('\n')) {
    const h = /^(#{1,3})\s+(.*)$/.exec(raw);
    const boldLine = /^\*\*(.+)\*\*$/.exec(raw.trim());
    const size = h ? SIZES[`h${h[1]!.length}` as 'h1'] : SIZES.body;
    const body = (h ? h[2]! : boldLine ? boldLine[1]! : raw).replace(/\t/g, '    ');
    for (const part of wrap(body, charsPerLine(size))) lines.push({ text: part, size, bold: Boolean(h || boldLine) });
  }
  return lines;
}

/** Windows-1252 bytes of a string, as a PDF literal string body with (, ) and \ escaped. */
function literal(s: string): string {
  const cp1252: Record<number, number> = { 0x20ac: 0x80, 0x2018: 0x91, 0x2019: 0x92, 0x201c: 0x93, 0x201d: 0x94, 0x2022: 0x95, 0x2013: 0x96, 0x2014: 0x97, 0x2122: 0x99 };
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const b = cp < 0x80 || (cp >= 0xa0 && cp <= 0xff) ? cp : (cp1252[cp] ?? 0x3f);
    if (b === 0x28 || b === 0x29 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b < 0x20 || b > 0x7e) out += `\\${b.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(b);
  }
  return out;
}

/** Renders `text` (plain or Markdown-ish) as a PDF document; `title` goes into the document info. */
export function textToPdf(text: string, o: { title?: string; createdAt?: Date } = {}): Buffer {
  const lines = layout(text);
  const pages: Line[][] = [];
  let page: Line[] = [];
  let y = PAGE.height - PAGE.margin;
  for (const line of lines) {
    const lead = line.size * 1.4;
    if (y - lead < PAGE.margin + 20 && page.length > 0) {
      pages.push(page);
      page = [];
      y = PAGE.height - PAGE.margin;
    }
    page.push(line);
    y -= lead;
  }
  pages.push(page);

  const objects: string[] = [];
  const add = (body: string) => objects.push(body); // object n is objects[n - 1]
  add('<< /Type /Catalog /Pages 2 0 R >>');
  add(''); // pages, filled below
  add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>');
  add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>');
  const kids: number[] = [];
  pages.forEach((p, i) => {
    let stream = 'BT\n';
    let cursor = PAGE.height - PAGE.margin;
    for (const line of p) {
      cursor -= line.size * 1.4;
      stream += `/${line.bold ? 'F2' : 'F1'} ${line.size} Tf 1 0 0 1 ${PAGE.margin} ${cursor.toFixed(2)} Tm (${literal(line.text)}) Tj\n`;
    }
    stream += `/F1 8 Tf 1 0 0 1 ${(PAGE.width / 2 - 10).toFixed(2)} ${(PAGE.margin / 2).toFixed(2)} Tm (${i + 1} / ${pages.length}) Tj\nET`;
    add(`<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`);
    const contents = objects.length;
    add(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${PAGE.width} ${PAGE.height}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents ${contents} 0 R >>`);
    kids.push(objects.length);
  });
  objects[1] = `<< /Type /Pages /Kids [${kids.map((k) => `${k} 0 R`).join(' ')}] /Count ${kids.length} >>`;
  const at = o.createdAt ?? new Date();
  const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  add(`<< /Title (${literal(o.title ?? 'Report')}) /Producer (Concord) /CreationDate (D:${stamp}Z) >>`);
  const info = objects.length;

  let out = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(Buffer.byteLength(out, 'latin1'));
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info ${info} 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
