// png_corpus.mjs - our own PNG corpus, generated: every colour type at every bit depth the PNG
// specification allows, plain and Adam7-interlaced, with and without transparency and other
// ancillary chunks, at odd sizes; and corrupt variants of them (a bad signature, bad header
// fields, missing or truncated chunks, a broken zlib stream, a bad filter type, too little
// image data, a chunk length past the end). The tests send them all to the server; make test
// passes them to the fuzz replay as seeds. PngSuite (../shared/corpus/png) is used in addition
// when it is there.
//
//   node tests/tools/png_corpus.mjs DIR     writes the files into DIR (and an index.json)
//   import { pngCorpus } from '...'         [{ name, bytes, expect: 'ok' | 'bad' | 'either' }]
//
// 'either': a fault PNG decoders may ignore (stb_image does not check chunk CRCs; chunks after
// IEND are never read).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data, { badCrc = false } = {}) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((crc32(Buffer.concat([head.subarray(4), data])) ^ (badCrc ? 1 : 0)) >>> 0);
  return Buffer.concat([head, data, crc]);
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const TYPE_NAME = { 0: 'gray', 2: 'rgb', 3: 'palette', 4: 'grayalpha', 6: 'rgba' };

// Sample (x, y, channel) of a dark vertical stroke on light paper, at the given depth: a
// picture the server reads as ink, whatever the colour type.
function sample(x, y, c, w, h, depth, type) {
  const max = (1 << depth) - 1;
  const ink = Math.abs(x - w / 2) < Math.max(1, w / 8) && y > h / 6 && y < (5 * h) / 6;
  if (type === 3) return ink ? 1 % (max + 1) : 0; // palette index: 0 paper, 1 ink
  const alphaChannel = (type === 4 && c === 1) || (type === 6 && c === 3);
  if (alphaChannel) return max; // opaque
  const v = ink ? 0.1 + 0.02 * c : 0.9 - 0.03 * c;
  return Math.round(v * max);
}

// The scanlines of a (sub)image of w x h pixels, each with filter byte `filter`, where
// pixel(x, y, c) gives the samples. Filters other than 0 are written as type 1 (Sub).
function scanlines(w, h, depth, type, pixel, filter = 0) {
  const ch = CHANNELS[type];
  const bitsPerPixel = ch * depth;
  const rowBytes = Math.ceil((w * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const out = Buffer.alloc(h * (rowBytes + 1));
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(rowBytes);
    let bit = 0;
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < ch; c++) {
        const v = pixel(x, y, c);
        if (depth === 16) {
          row.writeUInt16BE(v, bit >> 3);
        } else if (depth === 8) {
          row[bit >> 3] = v;
        } else {
          row[bit >> 3] |= v << (8 - depth - (bit & 7));
        }
        bit += depth;
      }
    }
    const o = y * (rowBytes + 1);
    out[o] = filter;
    if (filter === 1) {
      for (let i = 0; i < rowBytes; i++) out[o + 1 + i] = (row[i] - (i >= bpp ? row[i - bpp] : 0)) & 0xff;
    } else {
      row.copy(out, o + 1);
    }
  }
  return out;
}

const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

function imageData(w, h, depth, type, interlace, filter) {
  const px = (x, y, c) => sample(x, y, c, w, h, depth, type);
  if (!interlace) return scanlines(w, h, depth, type, px, filter);
  const parts = [];
  for (const [x0, y0, dx, dy] of ADAM7) {
    const pw = Math.ceil((w - x0) / dx), ph = Math.ceil((h - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    parts.push(scanlines(pw, ph, depth, type, (x, y, c) => px(x0 + x * dx, y0 + y * dy, c), filter));
  }
  return Buffer.concat(parts);
}

function ihdr(w, h, depth, type, interlace, { compression = 0, filterMethod = 0 } = {}) {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(w, 0);
  d.writeUInt32BE(h, 4);
  d[8] = depth;
  d[9] = type;
  d[10] = compression;
  d[11] = filterMethod;
  d[12] = interlace;
  return d;
}

// One PNG: opts.chunks replaces the default chunk list builder for the corrupt variants.
function png({ w, h, depth, type, interlace = 0, trns = false, extras = false, filter = 0 }) {
  const chunks = [chunk('IHDR', ihdr(w, h, depth, type, interlace))];
  if (extras) {
    chunks.push(chunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f])));
    chunks.push(chunk('tEXt', Buffer.from('Comment\0generated by tests/tools/png_corpus.mjs', 'latin1')));
  }
  if (type === 3) chunks.push(chunk('PLTE', Buffer.from([235, 230, 220, 20, 20, 60])));
  if (trns) {
    if (type === 3) chunks.push(chunk('tRNS', Buffer.from([255, 200])));
    else if (type === 0) chunks.push(chunk('tRNS', Buffer.from([0, 0])));
    else if (type === 2) chunks.push(chunk('tRNS', Buffer.from([0, 0, 0, 0, 0, 0])));
  }
  if (extras && type !== 3) {
    const bk = type === 2 || type === 6 ? Buffer.alloc(6, 0xff) : Buffer.alloc(2, 0xff);
    chunks.push(chunk('bKGD', depth === 16 ? bk : bk.map(() => 0)));
  }
  const raw = imageData(w, h, depth, type, interlace, filter);
  const z = zlib.deflateSync(raw);
  // IDAT split in two: decoders must join them
  const cut = z.length >> 1;
  chunks.push(chunk('IDAT', z.subarray(0, cut)), chunk('IDAT', z.subarray(cut)));
  chunks.push(chunk('IEND', Buffer.alloc(0)));
  return { bytes: Buffer.concat([SIGNATURE, ...chunks]), raw, z };
}

function valid() {
  const out = [];
  for (const type of [0, 2, 3, 4, 6]) {
    for (const depth of DEPTHS[type]) {
      for (const interlace of [0, 1]) {
        const name = `${TYPE_NAME[type]}-${depth}bit${interlace ? '-adam7' : ''}.png`;
        out.push({ name, bytes: png({ w: 29, h: 31, depth, type, interlace }).bytes, expect: 'ok' });
      }
    }
  }
  for (const type of [0, 2, 3]) {
    const depth = type === 3 ? 4 : 8;
    out.push({ name: `${TYPE_NAME[type]}-${depth}bit-trns.png`,
      bytes: png({ w: 40, h: 40, depth, type, trns: true }).bytes, expect: 'ok' });
  }
  out.push({ name: 'rgba-8bit-extras.png', bytes: png({ w: 24, h: 24, depth: 8, type: 6, extras: true }).bytes, expect: 'ok' });
  out.push({ name: 'gray-16bit-extras-sub.png', bytes: png({ w: 33, h: 17, depth: 16, type: 0, extras: true, filter: 1 }).bytes, expect: 'ok' });
  out.push({ name: 'gray-8bit-1x1.png', bytes: png({ w: 1, h: 1, depth: 8, type: 0 }).bytes, expect: 'ok' });
  out.push({ name: 'gray-1bit-1x1-adam7.png', bytes: png({ w: 1, h: 1, depth: 1, type: 0, interlace: 1 }).bytes, expect: 'ok' });
  out.push({ name: 'rgb-8bit-300x7.png', bytes: png({ w: 300, h: 7, depth: 8, type: 2 }).bytes, expect: 'ok' });
  return out;
}

// Rebuilds a PNG from chunk parts, for the corrupt variants.
function assemble(parts) {
  return Buffer.concat([SIGNATURE, ...parts]);
}

function corrupt() {
  const out = [];
  const bad = (name, bytes, expect = 'bad') => out.push({ name: `x-${name}.png`, bytes, expect });
  const base = { w: 28, h: 28, depth: 8, type: 0 };
  const { bytes, z } = png(base);
  const idat = (data) => chunk('IDAT', data);
  const head = chunk('IHDR', ihdr(28, 28, 8, 0, 0));
  const end = chunk('IEND', Buffer.alloc(0));
  bad('signature', Buffer.concat([Buffer.from('\x89PNG\r\n\x1b\n', 'latin1'), bytes.subarray(8)]));
  bad('signature-only', SIGNATURE);
  bad('empty', Buffer.alloc(0));
  for (const cut of [12, 20, 33, 45, bytes.length >> 1, bytes.length - 30]) bad(`truncated-${cut}`, bytes.subarray(0, cut));
  bad('no-ihdr', assemble([idat(z), end]));
  bad('no-idat', assemble([head, end]));
  bad('ihdr-short', assemble([chunk('IHDR', ihdr(28, 28, 8, 0, 0).subarray(0, 12)), idat(z), end]));
  bad('width-0', assemble([chunk('IHDR', ihdr(0, 28, 8, 0, 0)), idat(z), end]));
  bad('height-0', assemble([chunk('IHDR', ihdr(28, 0, 8, 0, 0)), idat(z), end]));
  bad('huge-dimensions', assemble([chunk('IHDR', ihdr(0x7fffffff, 0x7fffffff, 8, 0, 0)), idat(z), end]));
  bad('depth-3', assemble([chunk('IHDR', ihdr(28, 28, 3, 0, 0)), idat(z), end]));
  bad('rgb-depth-4', assemble([chunk('IHDR', ihdr(28, 28, 4, 2, 0)), idat(z), end]));
  bad('palette-depth-16', assemble([chunk('IHDR', ihdr(28, 28, 16, 3, 0)), chunk('PLTE', Buffer.alloc(6)), idat(z), end]));
  bad('colour-type-5', assemble([chunk('IHDR', ihdr(28, 28, 8, 5, 0)), idat(z), end]));
  bad('compression-1', assemble([chunk('IHDR', ihdr(28, 28, 8, 0, 0, { compression: 1 })), idat(z), end]));
  bad('filter-method-1', assemble([chunk('IHDR', ihdr(28, 28, 8, 0, 0, { filterMethod: 1 })), idat(z), end]));
  bad('interlace-2', assemble([chunk('IHDR', ihdr(28, 28, 8, 0, 2)), idat(z), end]));
  bad('zlib-garbage', assemble([head, idat(Buffer.from('this is not a zlib stream at all')), end]));
  bad('zlib-truncated', assemble([head, idat(z.subarray(0, z.length >> 1)), end]));
  const raw = scanlines(28, 28, 8, 0, (x, y) => (x === 14 ? 0 : 255));
  const badFilter = Buffer.from(raw);
  badFilter[29 * 3] = 5; // row 3: filter type 5 does not exist
  bad('filter-type-5', assemble([head, idat(zlib.deflateSync(badFilter)), end]));
  bad('data-too-short', assemble([head, idat(zlib.deflateSync(raw.subarray(0, raw.length >> 1))), end]));
  bad('palette-missing', assemble([chunk('IHDR', ihdr(28, 28, 8, 3, 0)), idat(zlib.deflateSync(raw)), end]));
  bad('palette-257-entries', assemble([chunk('IHDR', ihdr(28, 28, 8, 3, 0)), chunk('PLTE', Buffer.alloc(257 * 3, 9)), idat(zlib.deflateSync(raw)), end]));
  bad('palette-not-multiple-of-3', assemble([chunk('IHDR', ihdr(28, 28, 8, 3, 0)), chunk('PLTE', Buffer.alloc(7, 9)), idat(zlib.deflateSync(raw)), end]));
  const long = chunk('IDAT', z);
  long.writeUInt32BE(0x7ffffff0, 0); // a length far past the end of the file
  bad('chunk-length-past-end', assemble([head, long, end]));
  // faults decoders may ignore
  bad('ihdr-bad-crc', assemble([chunk('IHDR', ihdr(28, 28, 8, 0, 0), { badCrc: true }), idat(z), end]), 'either');
  bad('idat-bad-crc', assemble([head, chunk('IDAT', z, { badCrc: true }), end]), 'either');
  bad('no-iend', assemble([head, idat(z)]), 'either');
  bad('junk-after-iend', Buffer.concat([bytes, Buffer.from('trailing junk')]), 'either');
  return out;
}

export function pngCorpus() {
  return [...valid(), ...corrupt()];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node tests/tools/png_corpus.mjs DIR');
    process.exit(2);
  }
  fs.mkdirSync(dir, { recursive: true });
  const files = pngCorpus();
  for (const f of files) fs.writeFileSync(path.join(dir, f.name), f.bytes);
  fs.writeFileSync(path.join(dir, 'index.json'),
    JSON.stringify(files.map(({ name, expect }) => ({ name, expect })), null, 1));
  console.log(`png_corpus: ${files.length} files in ${dir}`);
}
