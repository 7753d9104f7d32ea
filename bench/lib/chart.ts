/** Renders the rows that carry a `chart` group as horizontal bar charts in one SVG. */
import type { BenchResult } from './report.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** Labels are cut to fit the label column (about 6.5 px per character at 12 px). */
const label = (s: string) => (s.length > 44 ? `${s.slice(0, 43)}…` : s);
/** The unit without the ratio explanation some rows carry, e.g. "req/s (ratio: …)" -> "req/s". */
const unitOf = (u: string) => u.replace(/\s*\(.*\)$/, '');
const num = (v: number) =>
  v >= 100 ? Math.round(v).toLocaleString('en-US') : v >= 10 ? v.toFixed(1) : v.toFixed(2);

export function renderChart(results: BenchResult[]): string {
  const groups = new Map<
    string,
    { name: string; value: number; unit: string; trellis: boolean }[]
  >();
  for (const res of results) {
    for (const row of res.rows) {
      if (!row.chart) continue;
      const list = groups.get(row.chart) ?? [];
      list.push({
        name: row.name,
        value: row.value,
        unit: row.unit,
        trellis: /trellis/i.test(row.name),
      });
      groups.set(row.chart, list);
    }
  }
  const width = 760;
  const labelW = 300;
  const barH = 20;
  const gap = 6;
  let y = 20;
  const parts: string[] = [];
  for (const [title, rows] of groups) {
    parts.push(`<text x="10" y="${y + 14}" font-weight="bold" font-size="14">${esc(title)}</text>`);
    y += 26;
    const max = Math.max(...rows.map((r) => r.value), 1);
    for (const r of rows) {
      const w = Math.max(1, ((width - labelW - 110) * r.value) / max);
      parts.push(`<text x="10" y="${y + 14}" font-size="12">${esc(label(r.name))}</text>`);
      parts.push(
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${r.trellis ? '#2f7d32' : '#9e9e9e'}"/>`,
      );
      parts.push(
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 14}" font-size="12">${num(r.value)} ${esc(unitOf(r.unit))}</text>`,
      );
      y += barH + gap;
    }
    y += 14;
  }
  if (parts.length === 0)
    parts.push('<text x="10" y="30" font-size="14">No charted results yet.</text>');
  const height = Math.max(y, 50);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
