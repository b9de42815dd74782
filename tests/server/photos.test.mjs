// photos.test.mjs - phone photos through the real server (issue 18): a 12 MP and a 48 MP JPEG
// answer 200, a 32 MiB body is taken, images over the limits get a 400 naming them, and images
// over 4 MP wait for a bounded number of places (503 with Retry-After) while small requests
// never do. The JPEGs are made here by build/tests/make-photo (tests/server/make_photo.c):
// nothing big is committed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir, startServer, postImage, postJson, raw, encodePng, BUILD, ROOT } from './lib.mjs';

// the helper of this build, else the default build's (make valgrind builds only the server)
const MAKE_PHOTO = [path.join(BUILD, 'tests', 'make-photo'),
  path.join(ROOT, 'build', 'tests', 'make-photo')].find((p) => fs.existsSync(p))
  || path.join(BUILD, 'tests', 'make-photo');
const MODEL = path.join(ROOT, 'models', 'mnist-mlp.model');
let dir;
let srv;

// A w x h phone-style JPEG (grey paper, a dark stroke, noise), optionally padded to `pad` bytes.
function photo(w, h, { quality = 90, orientation = 0, pad = 0 } = {}) {
  if (!fs.existsSync(MAKE_PHOTO)) throw new Error(`${MAKE_PHOTO} not built: run make test`);
  const out = path.join(dir, `photo-${w}x${h}-${orientation}-${pad}.jpg`);
  execFileSync(MAKE_PHOTO, [w, h, quality, orientation, out, ...(pad ? [pad] : [])].map(String));
  return fs.readFileSync(out);
}

function expectPrediction(r, what) {
  assert.equal(r.status, 200, `${what}: ${r.text}`);
  assert.ok(r.json.prediction === null || Number.isInteger(r.json.prediction), r.text);
  assert.equal(r.json.model, 'mnist-mlp');
}

before(async () => {
  dir = tmpdir('digits-photos-');
  if (!fs.existsSync(MODEL)) throw new Error(`${MODEL} missing`);
  srv = await startServer(['--model', MODEL, '--threads', '4', '--max-large-decodes', '1',
    '--large-decode-wait', '0']);
});

after(async () => {
  if (srv) assert.equal(await srv.stop(), 0, srv.log());
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a 12 MP phone photo (4032x3024 JPEG) is answered', async () => {
  const jpg = photo(4032, 3024);
  assert.ok(jpg.length > 1e6, `${jpg.length} bytes`);
  expectPrediction(await postImage(srv.url, jpg, 'image/jpeg', '?return_input=1'), '12 MP');
});

test('a 48 MP photo (8000x6000) and a rotated portrait 12 MP photo are answered', async () => {
  expectPrediction(await postImage(srv.url, photo(8000, 6000, { quality: 85 }), 'image/jpeg'),
    '48 MP');
  expectPrediction(await postImage(srv.url, photo(4032, 3024, { orientation: 6 }),
    'application/octet-stream'), '12 MP, orientation 6');
});

test('a body of exactly 32 MiB is taken and one byte more is 413', async () => {
  const limit = 32 * 1024 * 1024;
  const big = photo(4032, 3024, { pad: limit });
  assert.equal(big.length, limit);
  expectPrediction(await postImage(srv.url, big, 'image/jpeg'), '32 MiB');
  const over = await raw(srv.port, 'POST', '/predict', {
    headers: { 'Content-Type': 'image/jpeg', 'Content-Length': String(limit + 1) },
    body: big.subarray(0, 1024) });
  assert.equal(over.status, 413, over.text);
  assert.match(over.json().error, /larger than the limit of 33554432 bytes/);
});

test('images over the limits are refused with the limits named', async () => {
  // a JPEG whose frame header says 16385 x 100: refused from the header
  const sof = Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0, 100, 0x40, 0x01, 3,
    1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0, 0xff, 0xd9]);
  let r = await postImage(srv.url, sof, 'image/jpeg');
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.error, /16385x100; JPEG photos are accepted up to 16384 pixels per side and 50331648 pixels in all/);
  // a PNG over 4 MP: stb_image has no early scale-down, so PNG stays at 4 MP
  const W = 2049;
  r = await postImage(srv.url, encodePng(W, W, 1, new Uint8Array(W * W).fill(255)));
  assert.equal(r.status, 400, r.text);
  assert.match(r.json.error, /PNG, BMP and GIF are accepted up to 4096 pixels per side and 4194304 pixels in all \(send a photo as JPEG/);
});

test('expensive requests are bounded (503 + Retry-After) and small requests never wait', async () => {
  const jpg = photo(8000, 6000, { quality: 85 });
  const pixels = new Array(784).fill(0);
  pixels[300] = 1;
  const big = Array.from({ length: 6 }, () => postImage(srv.url, jpg, 'image/jpeg'));
  const small = Array.from({ length: 20 }, () => postJson(srv.url, { pixels }));
  const [bigs, smalls] = await Promise.all([Promise.all(big), Promise.all(small)]);
  for (const r of smalls) assert.equal(r.status, 200, r.text);
  let ok = 0;
  for (const r of bigs) {
    if (r.status === 200) {
      ok++;
      continue;
    }
    assert.equal(r.status, 503, r.text);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.match(r.json.error, /busy: 1 expensive request\(s\) \(images over 1 MP, JSON bodies over 1 MiB\) are being worked on/);
  }
  assert.ok(ok >= 1, 'at least one large photo got through');
});

// A /v2 BYTES tensor is sized only once its JSON is read, so every body holding one goes to
// the threads for expensive requests: a 4 MP PNG of plain paper is a few kilobytes of base64,
// far under the 64 KiB that sends other /v2 bodies there. With one such thread and no wait,
// some of a burst must be turned away, where inline they would all hold server threads.
test('/v2 infer bodies with BYTES images run on the threads for expensive requests', async () => {
  const W = 2048;
  const png = encodePng(W, W, 1, new Uint8Array(W * W).fill(235));
  const body = JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1],
    data: [png.toString('base64')] }] });
  assert.ok(body.length < 64 * 1024, `${body.length} bytes`);
  const url = `${srv.url}/v2/models/mnist-mlp/infer`;
  const post = () => fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body }).then(async (r) => ({ status: r.status, headers: r.headers, text: await r.text() }));
  const rs = await Promise.all(Array.from({ length: 16 }, post));
  let ok = 0, busy = 0;
  for (const r of rs) {
    if (r.status === 200) {
      ok++;
      assert.deepEqual(JSON.parse(r.text).outputs[1].shape, [1], r.text);
      continue;
    }
    assert.equal(r.status, 503, r.text);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.match(JSON.parse(r.text).error, /busy: 1 expensive request\(s\)/);
    busy++;
  }
  assert.ok(ok >= 1 && busy >= 1, `${ok} answered, ${busy} turned away`);
});

// Waiters hold no thread (server/gate.h): with one place and 2 threads, six photos posted at
// once are all answered, one after another, while small requests keep getting answers.
test('expensive requests wait for their turn without holding a thread', async () => {
  const two = await startServer(['--model', MODEL, '--threads', '2', '--max-large-decodes', '1',
    '--large-decode-wait', '20000']);
  try {
    const jpg = photo(4032, 3024);
    const pixels = new Array(784).fill(0);
    pixels[300] = 1;
    const big = Array.from({ length: 6 }, () => postImage(two.url, jpg, 'image/jpeg'));
    await new Promise((r) => setTimeout(r, 50));
    const times = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      assert.equal((await postJson(two.url, { pixels })).status, 200);
      times.push(performance.now() - t0);
    }
    for (const r of await Promise.all(big)) expectPrediction(r, 'queued photo');
    times.sort((a, b) => a - b);
    // a small request may wait for the one photo running on its thread (~30-60 ms), never
    // for the queue of five behind it (generous for a loaded CI machine)
    assert.ok(times[times.length - 1] < 1000, `slowest small request ${times.at(-1).toFixed(0)} ms`);
  } finally {
    assert.equal(await two.stop(), 0, two.log());
  }
});

test('with the default gate on 2 threads, the same photo posted twice at once (the page comparing two models) gets two answers', async () => {
  const two = await startServer(['--model', MODEL, '--threads', '2']);
  try {
    const jpg = photo(4032, 3024);
    const rs = await Promise.all([postImage(two.url, jpg, 'image/jpeg'),
      postImage(two.url, jpg, 'image/jpeg', '?model=mnist-mlp')]);
    for (const r of rs) expectPrediction(r, 'twice at once');
  } finally {
    assert.equal(await two.stop(), 0, two.log());
  }
});
