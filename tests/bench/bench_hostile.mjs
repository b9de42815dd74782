// bench_hostile.mjs - issue 21: what each hostile class of request costs digits-server, and
// what it does to everyone else. For every class, on a fresh server (so that its peak RSS is
// the class's own): the median wall time of one hostile request, the server's CPU time per
// hostile request (from /proc/PID/stat), its peak RSS (VmHWM), and the p50/p99 latency of
// ordinary /predict requests (a 28x28 JSON digit) sent one after another while 3 clients send
// the hostile body in a loop. One JSON line per figure on stdout, details on stderr.
//
//   node tests/bench/bench_hostile.mjs        (make bench runs it; needs make and MNIST)
//
// Targets (issue 21): ordinary p99 < 50 ms while 3 hostile clients run, peak RSS < 100 MB, no
// hostile body over 50 ms of CPU. Classes marked "legit" are the largest bodies a real client
// may send; their cost is what the limits allow, not an attack, and has no target.
// Environment: DIGITS_BUILD (build), BENCH_HOSTILE_ORDINARY (ordinary requests, 200).
import fs from 'node:fs';
import net from 'node:net';
import zlib from 'node:zlib';
import { startServer, mnistTest, toUnit, encodePng, pngChunk, peakRssKb, ROOT } from '../server/lib.mjs';

const ORDINARY = Number(process.env.BENCH_HOSTILE_ORDINARY || 200);
const TICK = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s
const MODEL = `${ROOT}/models/mnist-cnn.model`;

// ---- bodies ---------------------------------------------------------------------------------

// A progressive grayscale JPEG of w x h (multiples of 8) whose DC scan says "0" for every
// block and whose AC scans (one coefficient each) are nothing but end-of-band runs: the
// issue's scan bomb, 19 bytes a scan. Decoders still walk every block in every scan.
function scanBombJpeg(w, h, acScans) {
  const blocks = (w / 8) * (h / 8);
  const out = [];
  const seg = (marker, payload) => {
    out.push(Buffer.from([0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 255]));
    out.push(Buffer.from(payload));
  };
  const entropy = (bits) => { // [value, nbits] pairs, 1-padded, 0xFF stuffed
    const bytes = [];
    let acc = 0;
    let n = 0;
    const put = (v, k) => {
      for (let i = k - 1; i >= 0; i--) {
        acc = (acc << 1) | ((v >> i) & 1);
        if (++n === 8) {
          bytes.push(acc);
          if (acc === 0xff) bytes.push(0);
          acc = 0;
          n = 0;
        }
      }
    };
    for (const [v, k] of bits) put(v, k);
    if (n) put((1 << (8 - n)) - 1, 8 - n);
    return Buffer.from(bytes);
  };
  out.push(Buffer.from([0xff, 0xd8]));
  seg(0xdb, [0, ...new Array(64).fill(1)]);
  seg(0xc2, [8, h >> 8, h & 255, w >> 8, w & 255, 1, 1, 0x11, 0]);
  seg(0xc4, [0x00, 1, ...new Array(15).fill(0), 0]); // DC: category 0 = "0"
  seg(0xc4, [0x10, 1, 1, ...new Array(14).fill(0), 0xe0, 0x00]); // AC: EOBRUN14 = "0", EOB = "10"
  seg(0xda, [1, 1, 0x00, 0, 0, 0]);
  out.push(entropy(new Array(blocks).fill([0, 1])));
  const runs = [];
  for (let left = blocks; left > 0;) {
    if (left >= 16384) {
      const r = Math.min(left, 32767);
      runs.push([0, 1], [r - 16384, 14]);
      left -= r;
    } else {
      runs.push([2, 2]);
      left -= 1;
    }
  }
  const ac = entropy(runs);
  for (let k = 1; k <= acScans; k++) {
    const band = 1 + ((k - 1) % 63);
    seg(0xda, [1, 1, 0x00, band, band, 0]);
    out.push(ac);
  }
  out.push(Buffer.from([0xff, 0xd9]));
  return Buffer.concat(out);
}

// A 1x1 gray PNG whose zlib stream is n empty stored deflate blocks before the one holding the
// pixel: each block costs a decoder work whatever it holds (stb spent 1.6 s on 32 MiB).
function emptyBlocksPng(n) {
  const raw = Buffer.from([0, 0]); // filter byte, one pixel
  const blocks = Buffer.alloc(n * 5);
  for (let i = 0; i < n; i++) blocks.set([0, 0, 0, 0xff, 0xff], i * 5);
  let a = 1;
  let b = 0;
  for (const v of raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE(((b << 16) | a) >>> 0);
  const z = Buffer.concat([Buffer.from([0x78, 0x01]), blocks,
    Buffer.from([1, raw.length, 0, (~raw.length) & 255, 0xff]), raw, adler]);
  const real = encodePng(1, 1, 1, new Uint8Array([0]));
  // swap the IDAT of a real 1x1 PNG for this stream
  return Buffer.concat([real.subarray(0, 33), pngChunk('IDAT', z), pngChunk('IEND', Buffer.alloc(0))]);
}

function readCanvas(w, h, ink) {
  const px = new Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = ink(x, y) ? 1 : 0;
  return Buffer.from(JSON.stringify({ width: w, height: h, pixels: px }));
}

function bodies() {
  const n = 4194304;
  const digit = toUnit(mnistTest(1)[0].pixels);
  const W = 2048;
  const gray = new Uint8Array(W * W).fill(255);
  for (let y = 600; y < 1400; y++) for (let x = 980; x < 1070; x++) gray[y * W + x] = 0;
  return [
    ['json_unknown_key_8MB', 'application/json', Buffer.from(`{"x":1,"pixels":[${'1,'.repeat(n - 1)}1]}`), ''],
    ['json_error_after_4M_numbers', 'application/json', Buffer.from(`{"pixels":[${'0,'.repeat(n - 1)}0]]`), ''],
    ['json_deep_brackets_8MB', 'application/json', Buffer.from('['.repeat(8 << 20)), ''],
    ['json_legit_2048x2048', 'application/json',
      Buffer.from(`{"width":${W},"height":${W},"pixels":[${Array.from(gray, (v) => (v ? '0' : '1')).join(',')}]}`), 'legit'],
    ['png_2048x2048_zlib', 'image/png', encodePng(W, W, 1, gray), 'legit'],
    ['png_1x1_6M_empty_deflate_blocks', 'image/png', emptyBlocksPng(6 << 20), ''],
    ['jpeg_20000_empty_scans', 'image/jpeg', scanBombJpeg(2048, 2048, 20000), ''],
    ['jpeg_64_empty_scans_2048', 'image/jpeg', scanBombJpeg(2048, 2048, 63), ''],
    ['jpeg_64_empty_scans_48MP', 'image/jpeg', scanBombJpeg(8000, 6000, 63), ''],
    // 16 scans of all 750000 blocks: just under the block-visit limit (server/jpeg.h)
    ['jpeg_16_empty_scans_48MP_at_the_limit', 'image/jpeg', scanBombJpeg(8000, 6000, 15), ''],
    // /read: one long wide mark, which the cuts would try at every place (1.5 s before the
    // work budget), and a long wave
    ['read_wide_bar_2048x128', 'application/json', readCanvas(2048, 128, (x, y) => y >= 20 && y < 108), '', '/read'],
    ['read_wave_2048x128', 'application/json',
      readCanvas(2048, 128, (x, y) => Math.abs(y - (64 + 45 * Math.sin(x / 9))) < 6), '', '/read'],
    ['ordinary_json28', 'application/json', Buffer.from(JSON.stringify({ pixels: digit })), 'ordinary'],
  ];
}

// ---- measuring ------------------------------------------------------------------------------

const cpuTicks = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
};
const vmHWM = (pid) => peakRssKb(pid) / 1024;

async function post(url, type, body, route = '/predict') {
  const t0 = performance.now();
  const res = await fetch(`${url}${route}`, { method: 'POST', headers: { 'Content-Type': type }, body });
  const text = await res.text();
  return { status: res.status, ms: performance.now() - t0, text };
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

function figure(tag, metric, value, op, target) {
  const line = { bench: 'hostile', case: tag, metric, value: Number(value.toFixed(3)) };
  if (op) {
    line[`target_${op}`] = target;
    line.met = op === 'lt' ? value < target : value <= target;
  }
  console.log(JSON.stringify(line));
}

async function measure(name, type, body, kind, ordinaryBody, route) {
  const srv = await startServer(['--model', MODEL, '--threads', '2']);
  try {
    await post(srv.url, 'application/json', ordinaryBody);
    const first = await post(srv.url, type, body, route);
    console.error(`${name}: ${body.length} bytes -> ${first.status} ${first.text.slice(0, 120).trim()}`);
    const c0 = cpuTicks(srv.proc.pid);
    const walls = [];
    for (let i = 0; i < 5; i++) walls.push((await post(srv.url, type, body, route)).ms);
    const cpuMs = ((cpuTicks(srv.proc.pid) - c0) / TICK) * 1000 / 5;
    let stop = false;
    const hostile = Array.from({ length: 3 }, async () => {
      while (!stop) await post(srv.url, type, body, route).catch(() => {});
    });
    await new Promise((r) => setTimeout(r, 200));
    const lat = [];
    for (let i = 0; i < ORDINARY; i++) {
      const r = await post(srv.url, 'application/json', ordinaryBody);
      if (r.status !== 200) throw new Error(`${name}: an ordinary request got ${r.status}`);
      lat.push(r.ms);
    }
    stop = true;
    await Promise.all(hostile);
    const peak = vmHWM(srv.proc.pid);
    const legit = kind === 'legit' || kind === 'ordinary';
    figure(name, 'hostile_wall_ms_median', quantile(walls, 0.5));
    figure(name, 'hostile_cpu_ms_per_request', cpuMs, legit ? null : 'lt', 50);
    figure(name, 'peak_rss_mb', peak, 'lt', 100);
    figure(name, 'ordinary_p50_ms_under_3_clients', quantile(lat, 0.5));
    figure(name, 'ordinary_p99_ms_under_3_clients', quantile(lat, 0.99), legit ? null : 'lt', 50);
  } finally {
    await srv.stop();
  }
}

// Connection-level classes: what they hold, not what they compute.
async function slowClients() {
  const srv = await startServer(['--model', MODEL, '--threads', '2', '--timeout', '2']);
  const ordinaryBody = JSON.stringify({ pixels: toUnit(mnistTest(1)[0].pixels) });
  const sockets = [];
  try {
    const head = 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
    const timers = [];
    for (let i = 0; i < 100; i++) { // slowloris over 4 addresses
      const s = net.connect({ port: srv.port, host: '127.0.0.1', localAddress: `127.0.2.${1 + (i % 4)}` });
      s.on('error', () => {});
      sockets.push(s);
      let k = 0;
      timers.push(setInterval(() => { if (!s.destroyed) s.write(head[k++ % head.length]); }, 500));
    }
    await new Promise((r) => setTimeout(r, 4000)); // past the 2 s request deadline
    const open = sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
    const lat = [];
    for (let i = 0; i < ORDINARY; i++) lat.push((await post(srv.url, 'application/json', ordinaryBody)).ms);
    timers.forEach(clearInterval);
    figure('slowloris_100_clients', 'connections_left_after_2x_timeout', open, 'le', 0);
    figure('slowloris_100_clients', 'ordinary_p99_ms_under_attack', quantile(lat, 0.99), 'lt', 50);
    figure('slowloris_100_clients', 'peak_rss_mb', vmHWM(srv.proc.pid), 'lt', 100);
  } finally {
    sockets.forEach((s) => s.destroy());
    await srv.stop();
  }
}

const all = bodies();
const ordinaryBody = all.find(([n]) => n === 'ordinary_json28')[2];
const only = process.argv[2];
for (const [name, type, body, kind, route] of all) {
  if (only && !name.includes(only)) continue;
  await measure(name, type, body, kind, ordinaryBody, route);
}
if (!only || 'slowloris'.includes(only)) await slowClients();
