// chart.js - small SVG line charts (axes, ticks, legend) for the training curves. SVG rather
// than canvas so the colours follow the CSS theme and the text stays sharp at any size.

const NS = 'http://www.w3.org/2000/svg';
const W = 320, H = 190;
const M = { left: 40, right: 10, top: 26, bottom: 30 };

function el(name, attrs = {}, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
}

// About `count` round tick values covering [lo, hi].
function ticks(lo, hi, count) {
    const span = hi - lo || 1;
    const raw = span / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || mag * 10;
    const out = [];
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
    return out;
}

// series: [{label, cls, points: [[x, y], ...]}] (points with y === null are skipped).
// opts: {xLabel, format(y) -> string, yMin, yMax}
export function lineChart(container, series, opts = {}) {
    const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'line-chart', role: 'img' });
    const pts = series.flatMap((s) => s.points).filter((p) => p[1] !== null && Number.isFinite(p[1]));
    container.replaceChildren(svg);
    if (!pts.length) {
        svg.append(el('text', { x: W / 2, y: H / 2, class: 'empty', 'text-anchor': 'middle' },
            'no history in this model'));
        svg.setAttribute('aria-label', 'No training history');
        return;
    }
    const xs = pts.map((p) => p[0]);
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    let y0 = opts.yMin ?? Math.min(...pts.map((p) => p[1]));
    let y1 = opts.yMax ?? Math.max(...pts.map((p) => p[1]));
    if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.06;
    if (opts.yMin === undefined) y0 -= pad;
    if (opts.yMax === undefined) y1 += pad;
    const sx = (x) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
    const sy = (y) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
    const fmt = opts.format || ((v) => String(v));

    const grid = el('g', { class: 'grid' });
    const axes = el('g', { class: 'axes' });
    for (const t of ticks(y0, y1, 4)) {
        grid.append(el('line', { x1: M.left, x2: W - M.right, y1: sy(t), y2: sy(t) }));
        axes.append(el('text', { x: M.left - 5, y: sy(t) + 3.5, 'text-anchor': 'end' }, fmt(t)));
    }
    const xt = ticks(x0, x1, 6).filter((t) => Number.isInteger(t) || x1 - x0 < 3);
    for (const t of xt) {
        axes.append(el('line', { x1: sx(t), x2: sx(t), y1: H - M.bottom, y2: H - M.bottom + 4 }));
        axes.append(el('text', { x: sx(t), y: H - M.bottom + 14, 'text-anchor': 'middle' }, String(t)));
    }
    axes.append(el('line', { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
    axes.append(el('line', { x1: M.left, x2: M.left, y1: M.top - 4, y2: H - M.bottom }));
    axes.append(el('text', { x: (M.left + W - M.right) / 2, y: H - 3, 'text-anchor': 'middle',
        class: 'label' }, opts.xLabel || 'epoch'));
    svg.append(grid, axes);

    const legend = el('g', { class: 'legend' });
    let lx = M.left + 4;
    for (const s of series) {
        const p = s.points.filter((q) => q[1] !== null && Number.isFinite(q[1]));
        const g = el('g', { class: `series ${s.cls}` });
        if (p.length > 1) {
            const d = p.map((q, i) => `${i ? 'L' : 'M'}${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join('');
            g.append(el('path', { d }));
        }
        if (p.length <= 40) {
            for (const q of p) g.append(el('circle', { cx: sx(q[0]).toFixed(1), cy: sy(q[1]).toFixed(1), r: 2.6 }));
        }
        svg.append(g);
        const item = el('g', { class: `series ${s.cls}` });
        item.append(el('line', { x1: lx, x2: lx + 14, y1: 11, y2: 11 }));
        item.append(el('text', { x: lx + 18, y: 14.5, class: 'legend-text' }, s.label));
        legend.append(item);
        lx += 22 + s.label.length * 6.2;
    }
    svg.append(legend);
    const last = (s) => s.points.filter((q) => q[1] !== null).at(-1);
    svg.setAttribute('aria-label', series.map((s) => {
        const l = last(s);
        return l ? `${s.label}: ${fmt(l[1])} at ${opts.xLabel || 'epoch'} ${l[0]}` : `${s.label}: none`;
    }).join('; '));
}
