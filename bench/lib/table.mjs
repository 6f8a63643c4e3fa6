// Renders result rows as a Markdown table (readable in a terminal, pasteable into docs).

const STATUS = { true: 'met', false: 'MISSED', null: '–' };

export function fmt(v, unit = '') {
  if (v === undefined || v === null) return '–';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  const s = abs >= 100 ? v.toFixed(0) : abs >= 10 ? v.toFixed(1) : v.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}

export function renderTable(rows) {
  const head = ['#', 'Measure', 'Result', 'Baseline (same run)', 'Target', 'Status'];
  const body = rows.map((r) => [
    r.id, r.name, r.error ? `error: ${r.error}` : r.skipped ? `skipped: ${r.skipped}` : fmt(r.value, r.unit),
    r.baseline ?? '–', r.target ?? '–', r.error ? 'ERROR' : r.skipped ? 'skipped' : STATUS[String(r.pass ?? null)],
  ].map((c) => String(c).replace(/\|/g, '\\|')));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
