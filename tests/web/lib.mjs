// lib.mjs - helpers for the browser tests: the real digits-server on an ephemeral port, the
// system Chromium through playwright-core, strokes drawn with real input events, a tiny PNG
// encoder, and console-error collection.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

export const BUILD = process.env.DIGITS_BUILD || 'build';
export const SHOTS = path.join(BUILD, 'web-screenshots');
const SERVER = path.join(BUILD, 'digits-server');
const TRAIN = path.join(BUILD, 'digits-train');
const WORK = path.join(BUILD, 'web-test');
const MNIST_DIR = process.env.MNIST_DIR || 'data/mnist';

// ---------------------------------------------------------------------------------------------
// Models: the shipped ones, or ones trained here when a file is missing.

function train(out, args) {
    if (fs.existsSync(out)) return out;
    if (!fs.existsSync(TRAIN)) throw new Error(`${TRAIN} is missing: run make first`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    execFileSync(TRAIN, [...args, '--data', MNIST_DIR, '--out', out, '--no-reports', '--quiet'],
        { stdio: ['ignore', 'ignore', 'inherit'] });
    return out;
}

// The model the drawings are judged with: the shipped MLP (trained on augmented data, so it
// reads hand-drawn strokes), else a stand-in trained here.
export function mainModel() {
    if (fs.existsSync('models/mnist-mlp.model')) return 'models/mnist-mlp.model';
    return train(path.join(WORK, 'mnist-mlp.model'), ['--hidden', '256', '--epochs', '3',
        '--optimizer', 'adam', '--lr', '0.001', '--batch', '128', '--augment', 'standard',
        '--seed', '1', '--name', 'mnist-mlp']);
}

// A second, deliberately small model so the picker and the compare view have two to show.
export function smallModel() {
    return train(path.join(WORK, 'mnist-small.model'), ['--hidden', '32', '--epochs', '1',
        '--seed', '1', '--name', 'mnist-small']);
}

// ---------------------------------------------------------------------------------------------
// The server

// Starts build/digits-server serving web/ and the given models (and any extra flags). port 0 =
// ephemeral. Resolves to {url, port, proc, stop()} once it prints its listening line.
export function startServer(models, port = 0, extra = []) {
    if (!fs.existsSync(SERVER)) throw new Error(`${SERVER} is missing: run make first`);
    const args = [...models.flatMap((m) => ['--model', m]), '--port', String(port), '--web', 'web',
        '--threads', '2', '--quiet', ...extra];
    const proc = spawn(SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            proc.kill('SIGKILL');
            reject(new Error(`digits-server did not start in 10 s: ${log}`));
        }, 10000);
        proc.on('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`digits-server exited with ${code}: ${log}`));
        });
        proc.stderr.on('data', (chunk) => {
            log += chunk;
            const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
            if (!m) return;
            clearTimeout(timer);
            const p = Number(m[1]);
            resolve({
                url: `http://127.0.0.1:${p}/`,
                port: p,
                proc,
                log: () => log,
                stop: () => new Promise((done) => {
                    if (proc.exitCode !== null) return done();
                    proc.removeAllListeners('exit');
                    proc.on('exit', () => done());
                    proc.kill('SIGTERM');
                }),
            });
        });
    });
}

// ---------------------------------------------------------------------------------------------
// The browser

export function launch() {
    return chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
}

// Opens url in a new page of ctx and collects console errors and uncaught exceptions.
export async function open(ctx, url) {
    const page = await ctx.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    // Nothing may come from anywhere but the server itself (no CDN, no web fonts).
    const origin = new URL(url).origin;
    page.on('request', (r) => {
        const u = r.url();
        if (!u.startsWith(`${origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:')) {
            errors.push(`external request: ${u}`);
        }
    });
    await page.goto(url);
    await page.waitForSelector('#status[data-state="ok"]', { timeout: 10000 });
    return { page, errors };
}

export async function shot(page, name) {
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// Digits as polylines in pad units ([0,1] across the square), drawn the way people draw them.
export const DIGITS = {
    0: [[[0.5, 0.18], [0.37, 0.24], [0.3, 0.4], [0.3, 0.6], [0.37, 0.76], [0.5, 0.82],
        [0.63, 0.76], [0.7, 0.6], [0.7, 0.4], [0.63, 0.24], [0.5, 0.18]]],
    1: [[[0.48, 0.18], [0.52, 0.82]]],
    7: [[[0.3, 0.22], [0.7, 0.22]], [[0.7, 0.22], [0.46, 0.82]]],
};

async function padPoint(page, p) {
    const b = await page.locator('#pad').boundingBox();
    return [b.x + p[0] * b.width, b.y + p[1] * b.height];
}

// Real mouse strokes: down, moves with intermediate steps, up.
export async function drawMouse(page, strokes) {
    for (const s of strokes) {
        const [x0, y0] = await padPoint(page, s[0]);
        await page.mouse.move(x0, y0);
        await page.mouse.down();
        for (const p of s.slice(1)) {
            const [x, y] = await padPoint(page, p);
            await page.mouse.move(x, y, { steps: 12 });
        }
        await page.mouse.up();
    }
}

// Emulated touch through CDP (the page sees pointerType "touch"): touchStart, touchMoves, touchEnd.
export async function drawTouch(page, cdp, strokes) {
    for (const s of strokes) {
        const pts = [];
        for (let i = 0; i < s.length; i++) {
            const [x, y] = await padPoint(page, s[i]);
            if (i === 0) { pts.push([x, y]); continue; }
            const [px, py] = pts[pts.length - 1];
            for (let k = 1; k <= 12; k++) pts.push([px + ((x - px) * k) / 12, py + ((y - py) * k) / 12]);
        }
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: pts[0][0], y: pts[0][1] }] });
        for (const [x, y] of pts.slice(1)) {
            await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x, y }] });
        }
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    }
}

// A stylus: Chromium's CDP mouse events with pointerType "pen" (pressure 0.5 while down), so
// the page sees real pointer events of type pen.
export async function drawPen(page, cdp, strokes) {
    const send = (type, x, y, extra = {}) => cdp.send('Input.dispatchMouseEvent',
        { type, x, y, pointerType: 'pen', button: 'left', ...extra });
    for (const s of strokes) {
        let [px, py] = await padPoint(page, s[0]);
        await send('mousePressed', px, py, { buttons: 1, clickCount: 1, force: 0.5 });
        for (const p of s.slice(1)) {
            const [x, y] = await padPoint(page, p);
            for (let k = 1; k <= 12; k++) {
                await send('mouseMoved', px + ((x - px) * k) / 12, py + ((y - py) * k) / 12,
                    { buttons: 1, force: 0.5 });
            }
            [px, py] = [x, y];
        }
        await send('mouseReleased', px, py, { buttons: 0, clickCount: 1 });
    }
}

// Waits until the answer on screen belongs to the final drawing, and returns #prediction's text.
export async function settledPrediction(page) {
    await page.waitForFunction(() => document.querySelector('#prediction').dataset.settled === 'true',
        null, { timeout: 10000 });
    return (await page.textContent('#prediction')).trim();
}

export function bars(page) {
    return page.$$eval('#bars [data-digit]', (els) =>
        els.map((e) => ({ digit: e.dataset.digit, p: Number(e.dataset.probability) })));
}

// Opaque pixels on the drawing canvas (its background is CSS, so a cleared pad has none).
export function padInk(page) {
    return page.$eval('#pad', (c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
    });
}

// ---------------------------------------------------------------------------------------------
// PNG: 8-bit grayscale, dark ink on white paper like a scan, strokes anti-aliased by distance.

const CRC = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
});
function crc32(buf) {
    let c = 0xffffffff;
    for (const b of buf) c = CRC[(c ^ b) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
}

export function strokesPng(strokes, side = 160, width = 0.09) {
    const segs = strokes.flatMap((s) => s.slice(1).map((p, i) => [s[i], p]));
    const r = (width * side) / 2;
    const rows = [];
    for (let y = 0; y < side; y++) {
        const row = Buffer.alloc(side + 1); // filter byte 0, then gray
        for (let x = 0; x < side; x++) {
            let d = Infinity;
            for (const [a, b] of segs) {
                const ax = a[0] * side, ay = a[1] * side, bx = b[0] * side, by = b[1] * side;
                const vx = bx - ax, vy = by - ay;
                const t = Math.max(0, Math.min(1, ((x + 0.5 - ax) * vx + (y + 0.5 - ay) * vy) / (vx * vx + vy * vy || 1)));
                d = Math.min(d, Math.hypot(x + 0.5 - ax - t * vx, y + 0.5 - ay - t * vy));
            }
            const ink = Math.max(0, Math.min(1, r - d + 0.5));
            row[x + 1] = Math.round(250 - 220 * ink);
        }
        rows.push(row);
    }
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(side, 0);
    ihdr.writeUInt32BE(side, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 0; // grayscale
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk('IHDR', ihdr),
        chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
        chunk('IEND', Buffer.alloc(0)),
    ]);
}
