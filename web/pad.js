// pad.js - the drawing canvas. Strokes are kept as a list of point arrays in units of the pad's
// height ([0,1] down, [0,aspect] across: the square digit pad or the wide number pad), so every
// render (screen at devicePixelRatio, or the offscreen image sent to the server) is a replay of
// the same list; undo pops a stroke.
// Mouse, touch and pen all arrive as Pointer Events through one code path.

// Line width as a fraction of the pad's height. A digit drawn ~0.6 of it tall with this width
// carries about as much ink after the server's normalisation as the average MNIST digit (a
// ~2.5-3 px stroke in the 20 px box); checked against the t10k means for 0, 1 and 7.
export const STROKE = 1 / 10;
export const SEND_SIDE = 140;
// The number pad is NUMBER_ASPECT times as wide as tall and is sent at NUMBER_HEIGHT pixels
// high (300x100: a digit drawn 0.6 of the height is 60 px, plenty for /read's 20 px box).
export const NUMBER_ASPECT = 3;
export const NUMBER_HEIGHT = 100;

// A drawing whose strokes span less than this many pen widths from top to bottom is too small
// to read: at that size the pen's own width fills the loops and gaps (a 3 a fifth of the pad
// tall is a blob the network reads as 8), so the page asks for a bigger drawing instead of
// guessing. The pen stays a fixed width rather than following the drawing's size because a pen
// that changes width while you draw is confusing, and it would have to change after the fact
// (the size is only known once drawn); nor can the server recover detail the pen has already
// merged, so the fix has to be a bigger drawing.
export const MIN_PENS = 4;

function tracePath(ctx, pts, side) {
    // Quadratic curves through the midpoints: smooth, and still touching every sample
    // region, so fast strokes have no gaps (the segments interpolate between samples).
    const x = (p) => p[0] * side;
    const y = (p) => p[1] * side;
    ctx.beginPath();
    if (pts.length === 1) {
        ctx.arc(x(pts[0]), y(pts[0]), ctx.lineWidth / 2, 0, 2 * Math.PI);
        ctx.fill();
        return;
    }
    ctx.moveTo(x(pts[0]), y(pts[0]));
    for (let i = 1; i < pts.length - 1; i++) {
        const mx = (x(pts[i]) + x(pts[i + 1])) / 2;
        const my = (y(pts[i]) + y(pts[i + 1])) / 2;
        ctx.quadraticCurveTo(x(pts[i]), y(pts[i]), mx, my);
    }
    ctx.lineTo(x(pts[pts.length - 1]), y(pts[pts.length - 1]));
    ctx.stroke();
}

// Draws strokes onto ctx whose pad is side (in ctx units) tall.
export function renderStrokes(ctx, strokes, side, color) {
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.lineWidth = side * STROKE;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    for (const s of strokes) tracePath(ctx, s, side);
}

export class Pad {
    // canvas: the visible #pad; onChange(kind) with kind 'start' | 'move' | 'end' | 'undo' |
    // 'clear' after the strokes changed.
    constructor(canvas, onChange) {
        this.canvas = canvas;
        this.ctx = canvas.getContext('2d');
        this.onChange = onChange;
        this.strokes = [];
        this.active = null; // pointerId of the stroke being drawn
        this.background = null; // an uploaded image shown in place of strokes
        this.frame = 0;
        this.aspect = 1; // width / height: 1 for a digit, NUMBER_ASPECT for a number
        this.offscreen = document.createElement('canvas');
        this.offCtx = this.offscreen.getContext('2d', { willReadFrequently: true });

        canvas.addEventListener('pointerdown', (e) => this.down(e));
        canvas.addEventListener('pointermove', (e) => this.move(e));
        canvas.addEventListener('pointerup', (e) => this.up(e));
        canvas.addEventListener('pointercancel', (e) => this.up(e));
        canvas.addEventListener('lostpointercapture', (e) => this.up(e));
        canvas.addEventListener('contextmenu', (e) => e.preventDefault());
        new ResizeObserver(() => this.resize()).observe(canvas);
        matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.redraw());
        this.resize();
    }

    get empty() {
        return this.strokes.length === 0;
    }

    // The strokes' centre lines span less than MIN_PENS pen widths both ways (see MIN_PENS): a
    // small blob. A long thin stroke (a 7's bar alone, a 1) is legible at any height.
    get tooSmall() {
        if (this.empty || this.background) return false;
        let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
        for (const s of this.strokes) {
            for (const p of s) {
                x0 = Math.min(x0, p[0]);
                x1 = Math.max(x1, p[0]);
                y0 = Math.min(y0, p[1]);
                y1 = Math.max(y1, p[1]);
            }
        }
        return Math.max(x1 - x0, y1 - y0) < MIN_PENS * STROKE;
    }

    resize() {
        const rect = this.canvas.getBoundingClientRect();
        const dpr = window.devicePixelRatio || 1;
        const w = Math.max(1, Math.round(rect.width * dpr));
        const h = Math.max(1, Math.round(rect.height * dpr));
        if (w !== this.canvas.width || h !== this.canvas.height) {
            this.canvas.width = w;
            this.canvas.height = h;
        }
        this.redraw();
    }

    // Switches between the square digit pad (1) and the wide number pad (NUMBER_ASPECT). The
    // strokes are dropped: a digit's strokes mean nothing on the other pad. The caller sizes
    // the canvas (CSS aspect-ratio); the ResizeObserver then redraws.
    setAspect(aspect) {
        if (aspect === this.aspect) return;
        this.aspect = aspect;
        this.clear();
    }

    point(e) {
        const r = this.canvas.getBoundingClientRect();
        const c = (v, hi) => Math.min(hi, Math.max(0, v));
        return [c((e.clientX - r.left) / r.height, r.width / r.height), c((e.clientY - r.top) / r.height, 1)];
    }

    down(e) {
        if (this.active !== null || (e.pointerType === 'mouse' && e.button !== 0)) return;
        e.preventDefault();
        this.canvas.setPointerCapture(e.pointerId);
        this.active = e.pointerId;
        if (this.background) this.background = null;
        this.strokes.push([this.point(e)]);
        this.redraw();
        this.onChange('start');
    }

    move(e) {
        if (e.pointerId !== this.active) return;
        const stroke = this.strokes[this.strokes.length - 1];
        const events = (e.getCoalescedEvents && e.getCoalescedEvents()) || [];
        for (const ev of events.length ? events : [e]) {
            const p = this.point(ev);
            const last = stroke[stroke.length - 1];
            if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) > 0.002) stroke.push(p);
        }
        this.schedule();
        this.onChange('move');
    }

    up(e) {
        if (e.pointerId !== this.active) return;
        this.active = null;
        if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
        this.redraw();
        this.onChange('end');
    }

    undo() {
        if (this.active !== null) return false;
        if (this.background) {
            this.background = null;
        } else if (!this.strokes.pop()) {
            return false;
        }
        this.redraw();
        this.onChange('undo');
        return true;
    }

    clear() {
        this.active = null;
        this.strokes = [];
        this.background = null;
        this.redraw();
        this.onChange('clear');
    }

    // Shows an uploaded image (an ImageBitmap) instead of the strokes.
    showImage(bitmap) {
        this.strokes = [];
        this.background = bitmap;
        this.redraw();
    }

    schedule() {
        if (!this.frame) {
            this.frame = requestAnimationFrame(() => {
                this.frame = 0;
                this.redraw();
            });
        }
    }

    redraw() {
        const { ctx, canvas } = this;
        ctx.setTransform(1, 0, 0, 1, 0, 0);
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        this.canvas.dataset.strokes = String(this.strokes.length);
        if (this.background) {
            const b = this.background;
            const k = Math.min(canvas.width / b.width, canvas.height / b.height) * 0.9;
            const w = b.width * k, h = b.height * k;
            ctx.imageSmoothingQuality = 'high';
            ctx.drawImage(b, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
            return;
        }
        const ink = getComputedStyle(canvas).getPropertyValue('--ink').trim() || '#111';
        renderStrokes(ctx, this.strokes, canvas.height, ink);
    }

    // The drawing as the JSON body's image: ink values in [0,1], SEND_SIDE x SEND_SIDE for a
    // digit, NUMBER_HEIGHT tall and as wide as the pad's aspect for a number. The strokes are
    // rasterised straight at that size, so the canvas does the area averaging.
    pixels() {
        const height = this.aspect === 1 ? SEND_SIDE : NUMBER_HEIGHT;
        const width = Math.round(height * this.aspect);
        const ctx = this.offCtx;
        if (this.offscreen.width !== width || this.offscreen.height !== height) {
            this.offscreen.width = width;
            this.offscreen.height = height;
        }
        ctx.clearRect(0, 0, width, height);
        renderStrokes(ctx, this.strokes, height, '#000');
        const data = ctx.getImageData(0, 0, width, height).data;
        const out = new Array(width * height);
        for (let i = 0; i < out.length; i++) {
            const a = data[4 * i + 3];
            out[i] = a === 0 ? 0 : a === 255 ? 1 : Math.round(a / 2.55) / 100;
        }
        return { width, height, pixels: out };
    }
}
