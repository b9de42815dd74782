// lib.mjs - helpers for the server tests: start the real binary on a free loopback port, train
// small models with the real trainer, read MNIST, make PNG/BMP/GIF images, send raw HTTP.
//
// Environment: DIGITS_BUILD (default "build"), MNIST_DIR (default "data/mnist"). Paths are
// resolved from the repository root, so the tests run from any directory.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { checkAnswer } from './openapi.mjs';
import { pngChunk } from '../tools/png.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BUILD = path.resolve(ROOT, process.env.DIGITS_BUILD || 'build');
export const MNIST_DIR = path.resolve(ROOT, process.env.MNIST_DIR || 'data/mnist');
export const SERVER = path.join(BUILD, 'digits-server');
export const TRAIN = path.join(BUILD, 'digits-train');
export const SHARED_CORPUS = path.resolve(ROOT, '../shared/corpus');

// Every answer a test receives from a loopback server through fetch() is checked against
// server/openapi.json (openapi.mjs): a mismatch rejects the fetch, failing the test.
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const res = await realFetch(input, init);
  const u = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') return res;
  const method = (init.method || (typeof input === 'object' && input.method) || 'GET').toUpperCase();
  const body = Buffer.from(await res.clone().arrayBuffer());
  checkAnswer({ method, url: u.pathname + u.search, status: res.status, body,
    header: (n) => res.headers.get(n) ?? undefined });
  return res;
};

export function tmpdir(prefix = 'digits-srv-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Trains a small MLP with the real trainer (a second or so) and returns its path.
export function trainModel(dir, name, { seed = 1, hidden = 32, iterations = 400 } = {}) {
  const out = path.join(dir, `${name}.model`);
  execFileSync(TRAIN, ['--hidden', String(hidden), '--iterations', String(iterations),
    '--seed', String(seed), '--name', name, '--out', out, '--data', MNIST_DIR,
    '--no-reports', '--quiet', '--threads', '1'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

// Starts digits-server with args (plus --port 0) and resolves when it prints its address.
// The returned object has url, port, proc, log() (stderr so far), exited (a promise of the exit
// code) and stop(signal) (sends the signal and resolves with the exit code).
// DIGITS_SERVER_WRAPPER runs the server under a tool, e.g. "valgrind --error-exitcode=99"
// (make valgrind): a tool's non-zero exit then fails every test that checks the exit code.
const WRAPPER = (process.env.DIGITS_SERVER_WRAPPER || '').split(' ').filter(Boolean);
const START_MS = Number(process.env.DIGITS_SERVER_START_MS || 10000);

export function startServer(args, { quiet = true } = {}) {
  const full = ['--port', '0', '--bind', '127.0.0.1', ...(quiet ? ['--quiet'] : []), ...args];
  const proc = WRAPPER.length
    ? spawn(WRAPPER[0], [...WRAPPER.slice(1), SERVER, ...full], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(SERVER, full, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(sig || code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${err}`)), START_MS);
    proc.stderr.on('data', (chunk) => {
      err += chunk;
      // (any address: a test may --bind 0.0.0.0; url stays on loopback, which that serves too)
      const m = /listening on http:\/\/(?:127\.0\.0\.1|0\.0\.0\.0):(\d+)/.exec(err);
      if (m && !proc.started) {
        proc.started = true;
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          url: `http://127.0.0.1:${port}`, port, proc, exited,
          log: () => err,
          stop: async (signal = 'SIGTERM') => { proc.kill(signal); return exited; },
        });
      }
    });
    exited.then((code) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${err}`)); });
  });
}

// Waits until the server's stderr matches re (for SIGHUP results).
export async function waitLog(server, re, ms = 5000) {
  const t0 = Date.now();
  while (!re.test(server.log())) {
    if (Date.now() - t0 > ms) throw new Error(`log never matched ${re}:\n${server.log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// One HTTP request exactly as given (no URL normalisation, so "/../x" and "%2e%2e" reach the
// server unchanged); its answer is checked against server/openapi.json as fetch's are. Resolves {status, headers, body (Buffer), text, json()}.
export function raw(port, method, reqPath, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: reqPath, headers,
      agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        try {
          checkAnswer({ method, url: reqPath, status: res.statusCode, body: buf,
            header: (n) => [res.headers[n]].flat().filter((v) => v !== undefined).join(', ') || undefined });
        } catch (e) {
          reject(e);
          return;
        }
        resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString(),
          json: () => JSON.parse(buf.toString()) });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export async function postJson(url, obj, query = '') {
  const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
  const res = await fetch(`${url}/predict${query}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* checked by the caller */ }
  return { status: res.status, headers: res.headers, text, json };
}

export async function postImage(url, bytes, type = 'image/png', query = '') {
  const res = await fetch(`${url}/predict${query}`, {
    method: 'POST', headers: { 'Content-Type': type }, body: bytes });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* checked by the caller */ }
  return { status: res.status, headers: res.headers, text, json };
}

// ------------------------------------------------------------------------------------------
// MNIST

let mnistCache = null;
// The first n test images as {label, pixels: Uint8Array(784)}. Fails loudly without MNIST.
export function mnistTest(n = 100) {
  if (!mnistCache) {
    const imgPath = path.join(MNIST_DIR, 't10k-images-idx3-ubyte');
    const lblPath = path.join(MNIST_DIR, 't10k-labels-idx1-ubyte');
    if (!fs.existsSync(imgPath) || !fs.existsSync(lblPath)) {
      throw new Error(`MNIST test set not found in ${MNIST_DIR}: run "make data"`);
    }
    const img = fs.readFileSync(imgPath);
    const lbl = fs.readFileSync(lblPath);
    if (img.readUInt32BE(0) !== 0x803 || lbl.readUInt32BE(0) !== 0x801) {
      throw new Error('MNIST IDX magic mismatch');
    }
    mnistCache = { img, lbl, count: img.readUInt32BE(4) };
  }
  const out = [];
  for (let i = 0; i < Math.min(n, mnistCache.count); i++) {
    out.push({ label: mnistCache.lbl[8 + i],
      pixels: mnistCache.img.subarray(16 + i * 784, 16 + (i + 1) * 784) });
  }
  return out;
}

// 0..255 bytes to JSON-ready values in [0,1] with 3 decimals (what a page would send).
export function toUnit(bytes) {
  return Array.from(bytes, (b) => Math.round((b / 255) * 1000) / 1000);
}

// ------------------------------------------------------------------------------------------
// Image encoders (enough for tests: PNG gray/RGBA, 8-bit BMP, GIF)

// One PNG chunk: length, type, data, CRC (tests/tools/png.mjs).
export { pngChunk };

// Peak resident memory of process pid, in KiB (VmHWM).
export function peakRssKb(pid) {
  return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

// PNG of w*h pixels with `channels` bytes each (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
export function encodePng(w, h, channels, pixels) {
  const colorType = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = colorType;
  const rows = Buffer.alloc(h * (1 + w * channels));
  for (let y = 0; y < h; y++) {
    rows[y * (1 + w * channels)] = 0;
    Buffer.from(pixels.buffer, pixels.byteOffset + y * w * channels, w * channels)
      .copy(rows, y * (1 + w * channels) + 1);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0))]);
}

// 8-bit grayscale BMP (palette of 256 grays), bottom-up rows padded to 4 bytes.
export function encodeBmp(w, h, gray) {
  const stride = (w + 3) & ~3;
  const size = 14 + 40 + 1024 + stride * h;
  const b = Buffer.alloc(size);
  b.write('BM', 0, 'ascii');
  b.writeUInt32LE(size, 2);
  b.writeUInt32LE(14 + 40 + 1024, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(8, 28);
  b.writeUInt32LE(stride * h, 34);
  b.writeUInt32LE(256, 46);
  for (let i = 0; i < 256; i++) b.writeUInt32LE(i * 0x010101, 54 + i * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) b[1078 + (h - 1 - y) * stride + x] = gray[y * w + x];
  }
  return b;
}

// GIF with a 256-gray palette. LZW is written "uncompressed": 9-bit codes with a clear code
// before the table would grow, which every decoder accepts.
export function encodeGif(w, h, gray) {
  const parts = [Buffer.from('GIF89a', 'ascii')];
  const lsd = Buffer.alloc(7);
  lsd.writeUInt16LE(w, 0);
  lsd.writeUInt16LE(h, 2);
  lsd[4] = 0xf7; // global table, 8 bits, 256 entries
  parts.push(lsd);
  const pal = Buffer.alloc(768);
  for (let i = 0; i < 256; i++) pal[i * 3] = pal[i * 3 + 1] = pal[i * 3 + 2] = i;
  parts.push(pal);
  const id = Buffer.alloc(10);
  id[0] = 0x2c;
  id.writeUInt16LE(w, 5);
  id.writeUInt16LE(h, 7);
  parts.push(id);
  const codes = [256];
  let n = 0;
  for (const g of gray) {
    if (n === 254) { codes.push(256); n = 0; }
    codes.push(g);
    n++;
  }
  codes.push(257);
  const bytes = [];
  let acc = 0;
  let bits = 0;
  for (const c of codes) {
    acc |= c << bits;
    bits += 9;
    while (bits >= 8) { bytes.push(acc & 0xff); acc >>>= 8; bits -= 8; }
  }
  if (bits) bytes.push(acc & 0xff);
  const data = [8];
  for (let i = 0; i < bytes.length; i += 255) {
    const sub = bytes.slice(i, i + 255);
    data.push(sub.length, ...sub);
  }
  data.push(0, 0x3b);
  parts.push(Buffer.from(data));
  return Buffer.concat(parts);
}
