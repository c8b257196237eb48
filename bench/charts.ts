// Small dependency-free SVG charts for the benchmark report.

const WIDTH = 640;
const HEIGHT = 360;
const MARGIN = { left: 80, right: 20, top: 40, bottom: 60 };
const COLORS = ['#2b8a3e', '#c92a2a', '#1864ab', '#e67700', '#862e9c'];

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Decimal units for axis ticks at powers of ten: 1 kB, 10 kB, 100 kB, 1 MB. */
function decimalBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  const exponent = Math.min(units.length - 1, Math.floor(Math.log10(Math.max(bytes, 1)) / 3));
  return `${Number((bytes / 1000 ** exponent).toPrecision(3))} ${units[exponent]}`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Grouped bars on a log10 y axis: one group per category, one bar per series. */
export function logBarChart(title: string, categories: string[], series: { name: string; values: number[] }[], yLabel: string): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const all = series.flatMap((s) => s.values).filter((v) => v > 0);
  const minExp = Math.floor(Math.log10(Math.min(...all)));
  const maxExp = Math.ceil(Math.log10(Math.max(...all)));
  const y = (v: number) => MARGIN.top + plotH - ((Math.log10(Math.max(v, 10 ** minExp)) - minExp) / Math.max(1, maxExp - minExp)) * plotH;
  const groupW = plotW / categories.length;
  const barW = (groupW * 0.8) / series.length;
  const parts: string[] = [];
  for (let e = minExp; e <= maxExp; e++) {
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(10 ** e)}" y2="${y(10 ** e)}" stroke="#ddd"/>`);
    parts.push(
      `<text x="${MARGIN.left - 6}" y="${y(10 ** e) + 4}" text-anchor="end" font-size="11">${escapeXml(decimalBytes(10 ** e))}</text>`,
    );
  }
  categories.forEach((category, i) => {
    const gx = MARGIN.left + i * groupW + groupW * 0.1;
    series.forEach((s, j) => {
      const v = s.values[i] ?? 0;
      const top = y(v);
      parts.push(
        `<rect x="${gx + j * barW}" y="${top}" width="${barW - 2}" height="${MARGIN.top + plotH - top}" fill="${COLORS[j % COLORS.length]}"><title>${escapeXml(`${s.name}: ${formatBytes(v)}`)}</title></rect>`,
      );
    });
    parts.push(
      `<text x="${MARGIN.left + i * groupW + groupW / 2}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle" font-size="12">${escapeXml(category)}</text>`,
    );
  });
  return frame(
    title,
    parts,
    series.map((s) => s.name),
    yLabel,
    'session size (files)',
    'row',
  );
}

/** Cumulative distributions (fraction of writes stored within x seconds), on a log10 time axis. */
export function cdfChart(title: string, series: { name: string; samples: number[] }[], xLabel: string): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const minExp = -2;
  const maxExp = Math.ceil(Math.log10(Math.max(1, ...series.flatMap((s) => s.samples))));
  const x = (v: number) => MARGIN.left + ((Math.log10(Math.max(v, 10 ** minExp)) - minExp) / (maxExp - minExp)) * plotW;
  const y = (f: number) => MARGIN.top + plotH - f * plotH;
  const parts: string[] = [];
  for (let f = 0; f <= 1.0001; f += 0.25) {
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(f)}" y2="${y(f)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y(f) + 4}" text-anchor="end" font-size="11">${Math.round(f * 100)}%</text>`);
  }
  for (let e = minExp; e <= maxExp; e++) {
    parts.push(`<line x1="${x(10 ** e)}" x2="${x(10 ** e)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`);
    parts.push(
      `<text x="${x(10 ** e)}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle" font-size="11">${Number((10 ** e).toPrecision(1))}</text>`,
    );
  }
  series.forEach((s, j) => {
    const sorted = [...s.samples].sort((a, b) => a - b);
    const points = sorted.map((v, i) => `${x(v).toFixed(1)},${y((i + 1) / sorted.length).toFixed(1)}`);
    if (points.length > 0)
      parts.push(
        `<polyline fill="none" stroke="${COLORS[j % COLORS.length]}" stroke-width="2" points="${x(sorted[0]!).toFixed(1)},${y(0)} ${points.join(' ')}"/>`,
      );
  });
  return frame(
    title,
    parts,
    series.map((s) => s.name),
    'writes stored',
    xLabel,
    'column',
  );
}

/** Lines on linear axes from 0 (x: e.g. minutes or sessions, y: e.g. MiB or % of a core), one per series. */
export function lineChart(title: string, series: Series[], xLabel: string, yLabel: string): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const points = series.flatMap((s) => s.points);
  const maxX = niceCeiling(Math.max(1e-9, ...points.map((p) => p.x)));
  const maxY = niceCeiling(Math.max(1e-9, ...points.map((p) => p.y)));
  const x = (v: number) => MARGIN.left + (v / maxX) * plotW;
  const y = (v: number) => MARGIN.top + plotH - (v / maxY) * plotH;
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const vy = (maxY * i) / 4;
    const vx = (maxX * i) / 4;
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(vy)}" y2="${y(vy)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y(vy) + 4}" text-anchor="end" font-size="11">${Number(vy.toPrecision(3))}</text>`);
    parts.push(`<line x1="${x(vx)}" x2="${x(vx)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`);
    parts.push(
      `<text x="${x(vx)}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle" font-size="11">${Number(vx.toPrecision(3))}</text>`,
    );
  }
  series.forEach((s, j) => {
    const color = COLORS[j % COLORS.length];
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${sorted.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const p of sorted) parts.push(`<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3" fill="${color}"/>`);
  });
  return frame(
    title,
    parts,
    series.map((s) => s.name),
    yLabel,
    xLabel,
    'column',
  );
}

/** 1, 2 or 5 times a power of ten, at least `v`: a round top for a linear axis. */
function niceCeiling(v: number): number {
  const power = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * power).find((c) => c >= v)!;
}

function frame(title: string, body: string[], legend: string[], yLabel: string, xLabel: string, layout: 'row' | 'column'): string {
  // A row under the plot for short names; a column inside the plot's top-left corner for long ones.
  const at = (i: number) =>
    layout === 'row' ? { x: MARGIN.left + i * 150, y: HEIGHT - 22 } : { x: MARGIN.left + 10, y: MARGIN.top + 8 + i * 18 };
  const legendItems = legend
    .map((name, i) => {
      const { x, y } = at(i);
      return `<rect x="${x}" y="${y}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 18}" y="${y + 10}" font-size="12">${escapeXml(name)}</text>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>
<text transform="translate(16 ${HEIGHT / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(yLabel)}</text>
<text x="${MARGIN.left + (WIDTH - MARGIN.left - MARGIN.right) / 2}" y="${HEIGHT - 30}" text-anchor="middle" font-size="12">${escapeXml(xLabel)}</text>
${body.join('\n')}
${legendItems}
</svg>
`;
}
