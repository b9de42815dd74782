// samples.test.mjs - the /samples routes over SQLite (--samples): every route and error,
// writes refused to clients off this machine, the size cap, schema versions, and no
// acknowledged sample lost when the server is killed with SIGKILL at random moments.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, SERVER, tmpdir, startServer, raw, encodePng } from './lib.mjs';

const MODEL = path.join(ROOT, 'models', 'mnist-mlp.model');
const JSON_HEADERS = { 'Content-Type': 'application/json' };
// A vertical bar: the shipped models read it as 1.
const BAR = Array.from({ length: 784 }, (_, i) =>
  (i % 28 >= 13 && i % 28 <= 14 && i >= 4 * 28 && i < 24 * 28 ? 1 : 0));

let dir, srv;
before(async () => {
  dir = tmpdir('digits-samples-');
  srv = await startServer(['--model', MODEL, '--samples', path.join(dir, 'main.db'), '--samples-rate', '0']);
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0, srv.log());
  fs.rmSync(dir, { recursive: true, force: true });
});

const post = (port, body, query = '', headers = JSON_HEADERS) => raw(port, 'POST', `/samples${query}`,
  { headers, body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) });

function sqlite(db, sql) {
  const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
  if (r.error) throw new Error(`sqlite3 is not installed (make deps): ${r.error.message}`);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('without --samples the routes say how to turn them on', async () => {
  const plain = await startServer(['--model', MODEL]);
  try {
    for (const r of [await raw(plain.port, 'GET', '/samples'), await post(plain.port, { label: 1, pixels: BAR }),
      await raw(plain.port, 'GET', '/samples/1')]) {
      assert.equal(r.status, 404, r.text);
      assert.match(r.json().error, /start the server with --samples FILE/);
    }
  } finally {
    assert.equal(await plain.stop(), 0);
  }
});

test('POST /samples keeps the image, the label and what the model answered', async () => {
  const before = JSON.parse((await raw(srv.port, 'GET', '/samples')).text).total;
  const forms = [
    [{ pixels: BAR }, '?label=7'],
    [{ label: 7, pixels: BAR }, ''],
    [`{"pixels":${JSON.stringify(BAR)} , "label" : 7 }`, ''],
    [`{ "label":7 , "pixels":${JSON.stringify(BAR)}}`, '?label=7'],
    [{ width: 3, height: 3, pixels: [0, 1, 0, 0, 1, 0, 0, 1, 0], label: 7, model: 'mnist-mlp' }, ''],
  ];
  const ids = [];
  for (const [body, q] of forms) {
    const r = await post(srv.port, body, q);
    assert.equal(r.status, 201, `${q} ${String(typeof body === 'string' ? body : JSON.stringify(body)).slice(0, 60)}: ${r.text}`);
    const j = r.json();
    assert.deepEqual(Object.keys(j), ['id', 'label', 'prediction', 'model']);
    assert.equal(j.label, 7);
    assert.equal(j.prediction, 1);
    assert.equal(j.model, 'mnist-mlp');
    ids.push(j.id);
  }
  assert.deepEqual(ids, ids.map((_, i) => ids[0] + i), 'ids in order');
  // an image file, with its original kept as a PNG of at most 280 px
  const W = 600, H = 300;
  const px = new Uint8Array(W * H).fill(230);
  for (let y = 40; y < 260; y++) for (let x = 290; x < 310; x++) px[y * W + x] = 20;
  const img = await post(srv.port, encodePng(W, H, 1, px), '?label=1', { 'Content-Type': 'image/png' });
  assert.equal(img.status, 201, img.text);
  const id = img.json().id;
  const one = await raw(srv.port, 'GET', `/samples/${id}`);
  assert.equal(one.status, 200);
  const s = one.json();
  assert.equal(s.id, id);
  assert.equal(s.label, 1);
  assert.equal(s.prediction, 1);
  assert.equal(s.route, '/samples');
  assert.equal(s.input.length, 784);
  assert.ok(s.input.some((v) => v > 0.5), 'the 28x28 the network saw');
  assert.equal(s.probabilities.length, 10);
  assert.ok(Math.abs(s.time - Date.now() / 1000) < 60);
  const png = await raw(srv.port, 'GET', `/samples/${id}.png`);
  assert.equal(png.status, 200);
  assert.equal(png.headers['content-type'], 'image/png');
  assert.equal(png.body.subarray(1, 4).toString(), 'PNG');
  // box-averaged by a whole factor (3 here) to at most 280 px a side, in proportion
  assert.equal(png.body.readUInt32BE(16), 200, 'width scaled to at most 280');
  assert.equal(png.body.readUInt32BE(20), 100, 'height kept in proportion');
  const list = JSON.parse((await raw(srv.port, 'GET', '/samples')).text);
  assert.equal(list.total, before + forms.length + 1);
});

test('GET /samples filters by label and pages with limit and offset', async () => {
  for (const label of [2, 2, 2, 3]) assert.equal((await post(srv.port, { label, pixels: BAR })).status, 201);
  const twos = JSON.parse((await raw(srv.port, 'GET', '/samples?label=2')).text);
  assert.equal(twos.total, 3);
  assert.deepEqual(twos.samples.map((s) => s.label), [2, 2, 2]);
  const page = JSON.parse((await raw(srv.port, 'GET', '/samples?label=2&limit=2&offset=1')).text);
  assert.equal(page.total, 3);
  assert.deepEqual(page.samples.map((s) => s.id), twos.samples.slice(1, 3).map((s) => s.id));
  for (const q of ['label=10', 'label=x', 'label=', 'limit=0', 'limit=1001', 'limit=x', 'offset=-1', 'offset=1.5']) {
    const r = await raw(srv.port, 'GET', `/samples?${q}`);
    assert.equal(r.status, 400, `${q}: ${r.text}`);
  }
});

test('DELETE /samples/{id}, and ids that are not there', async () => {
  const id = (await post(srv.port, { label: 4, pixels: BAR })).json().id;
  const d = await raw(srv.port, 'DELETE', `/samples/${id}`);
  assert.equal(d.status, 200, d.text);
  assert.deepEqual(d.json(), { deleted: id });
  for (const [m, p] of [['DELETE', `/samples/${id}`], ['GET', `/samples/${id}`], ['GET', `/samples/${id}.png`],
    ['GET', '/samples/0'], ['GET', '/samples/abc'], ['GET', '/samples/01'], ['GET', '/samples/1.jpg'],
    ['DELETE', '/samples/1.png'], ['GET', '/samples/99999999999999999999']]) {
    const r = await raw(srv.port, m, p);
    assert.equal(r.status, 404, `${m} ${p}: ${r.text}`);
  }
  assert.equal((await raw(srv.port, 'PUT', '/samples')).status, 405);
  assert.equal((await raw(srv.port, 'POST', `/samples/${id}`)).status, 405);
});

// The members of a ustar archive: [{name, data}].
function untar(buf) {
  const out = [];
  for (let off = 0; off + 512 <= buf.length;) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    assert.equal(parseInt(h.subarray(148, 156).toString('latin1'), 8), sum, `${name}: header checksum`);
    assert.equal(h.subarray(257, 262).toString('latin1'), 'ustar');
    out.push({ name, data: buf.subarray(off + 512, off + 512 + size) });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

test('GET /samples/export is an MNIST IDX pair, in id order, that matches the samples', async () => {
  const db = path.join(dir, 'export.db');
  const s = await startServer(['--model', MODEL, '--samples', db, '--samples-rate', '0']);
  try {
    const empty = await raw(s.port, 'GET', '/samples/export');
    assert.equal(empty.status, 200);
    const e = untar(empty.body);
    assert.equal(e[0].data.readUInt32BE(4), 0, 'no images yet');
    for (const label of [5, 0, 9]) assert.equal((await post(s.port, { label, pixels: BAR })).status, 201);
    const r = await raw(s.port, 'GET', '/samples/export');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/x-tar');
    assert.equal(r.body.length % 512, 0);
    const [images, labels] = untar(r.body);
    assert.equal(images.name, 'samples-images-idx3-ubyte');
    assert.equal(labels.name, 'samples-labels-idx1-ubyte');
    assert.equal(images.data.readUInt32BE(0), 0x803);
    assert.deepEqual([1, 2, 3].map((i) => images.data.readUInt32BE(4 * i)), [3, 28, 28]);
    assert.equal(images.data.length, 16 + 3 * 784);
    assert.equal(labels.data.readUInt32BE(0), 0x801);
    assert.equal(labels.data.readUInt32BE(4), 3);
    assert.deepEqual([...labels.data.subarray(8)], [5, 0, 9]);
    const first = JSON.parse((await raw(s.port, 'GET', '/samples?limit=1')).text).samples[0];
    assert.deepEqual([...images.data.subarray(16, 16 + 784)], first.input.map((v) => Math.round(v * 255)));
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('bad samples are refused with the reason', async () => {
  const cases = [
    [{ pixels: BAR }, '', /a sample needs its label/],
    [{ label: 10, pixels: BAR }, '', /label must be a digit 0\.\.9/],
    [{ label: 3.5, pixels: BAR }, '', /label must be a digit/],
    [{ label: '3', pixels: BAR }, '', /label must be a digit/],
    [`{"label":1,"label":2,"pixels":${JSON.stringify(BAR)}}`, '', /duplicate field "label"/],
    [{ label: 1, pixels: BAR }, '?label=2', /label is given twice/],
    [{ pixels: BAR }, '?label=12', /label must be a digit/],
    [{ pixels: BAR }, '?label=00000001', /label must be a digit/],
    [{ label: 1, pixels: new Array(784).fill(0) }, '', /the image is blank/],
    [{ label: 1, images: [{ pixels: BAR }] }, '', /a sample is one image/],
    [{ label: 1, pixels: BAR, model: 'nope' }, '', /unknown model "nope"/],
    [{ label: 1, pixels: BAR, colour: 'red' }, '', /unknown field "colour"/],
    ['{"label":1,"pixels":[1,2', '', /./],
  ];
  for (const [body, q, re] of cases) {
    const r = await post(srv.port, body, q);
    assert.equal(r.status, 400, `${q} ${String(typeof body === 'string' ? body : JSON.stringify(body)).slice(0, 50)}: ${r.text}`);
    assert.match(r.json().error, re);
  }
  const t = await post(srv.port, 'x', '?label=1', { 'Content-Type': 'text/plain' });
  assert.equal(t.status, 415);
});

// A non-loopback address of this machine, to be a client that is not on loopback.
function outsideAddress() {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list || []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new Error('this machine has no non-loopback IPv4 address to test remote clients from');
}

test('writes from clients off this machine are 403 unless --allow-remote-writes', async () => {
  const addr = outsideAddress();
  for (const allow of [false, true]) {
    const s = await startServer(['--model', MODEL, '--bind', '0.0.0.0', '--samples',
      path.join(dir, `remote-${allow}.db`), ...(allow ? ['--allow-remote-writes'] : [])]);
    try {
      const url = `http://${addr}:${s.port}`;
      const w = await fetch(`${url}/samples`, { method: 'POST', headers: JSON_HEADERS,
        body: JSON.stringify({ label: 1, pixels: BAR }) });
      const d = await fetch(`${url}/samples/1`, { method: 'DELETE' });
      const g = await fetch(`${url}/samples`);
      assert.equal(g.status, 200, 'reading is open');
      if (allow) {
        assert.equal(w.status, 201, await w.text());
        assert.equal(d.status, 200);
      } else {
        assert.equal(w.status, 403);
        assert.match((await w.json()).error, /--allow-remote-writes/);
        assert.equal(d.status, 403);
        // the same server takes them on loopback
        assert.equal((await post(s.port, { label: 1, pixels: BAR })).status, 201);
      }
    } finally {
      assert.equal(await s.stop(), 0);
    }
  }
});

test('writes past --samples-rate from one address are 429 with Retry-After', async () => {
  const s = await startServer(['--model', MODEL, '--samples', path.join(dir, 'rate.db'),
    '--samples-rate', '2']);
  try {
    const codes = [];
    for (let i = 0; i < 8; i++) codes.push((await post(s.port, { label: 1, pixels: BAR })).status);
    assert.deepEqual(codes.slice(0, 4), [201, 201, 201, 201], 'a burst of twice the rate');
    assert.ok(codes.slice(4).includes(429), codes.join(' '));
    const r = await post(s.port, { label: 1, pixels: BAR });
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '1');
    assert.match(r.json().error, /too many writes from this address: at most 4 at once and 2 a second/);
    assert.equal((await raw(s.port, 'GET', '/samples')).status, 200, 'reads are not limited');
    await new Promise((res) => setTimeout(res, 1100));
    assert.equal((await post(s.port, { label: 1, pixels: BAR })).status, 201, 'the budget comes back');
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('--samples-max: a write past the cap is 507, and reading goes on', async () => {
  const db = path.join(dir, 'small.db');
  const s = await startServer(['--model', MODEL, '--samples', db, '--samples-max', '64k', '--samples-rate', '0']);
  try {
    let full = null;
    for (let i = 0; i < 40 && !full; i++) {
      const r = await post(s.port, { label: i % 10, pixels: BAR });
      if (r.status === 507) full = r;
      else assert.equal(r.status, 201, r.text);
    }
    assert.ok(full, 'the cap was reached');
    assert.match(full.json().error, /the samples database is full: \d+ bytes of the 65536 that --samples-max allows/);
    assert.equal((await raw(s.port, 'GET', '/samples')).status, 200);
  } finally {
    assert.equal(await s.stop(), 0);
  }
  assert.ok(fs.statSync(db).size <= 65536 + 4096, `${fs.statSync(db).size} bytes`);
});

test('schema versions: an empty file is migrated, a newer schema is refused untouched', async () => {
  const empty = path.join(dir, 'empty.db');
  fs.writeFileSync(empty, '');
  const s = await startServer(['--model', MODEL, '--samples', empty, '--samples-rate', '0']);
  assert.equal(await s.stop(), 0);
  assert.equal(sqlite(empty, 'PRAGMA user_version'), '1');
  assert.equal(sqlite(empty, 'PRAGMA journal_mode'), 'wal');
  const newer = path.join(dir, 'newer.db');
  sqlite(newer, 'CREATE TABLE t (x); PRAGMA user_version = 99');
  const before = fs.readFileSync(newer);
  const r = spawnSync(SERVER, ['--port', '0', '--model', MODEL, '--samples', newer], { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /schema version 99 was written by a newer digits-server \(this one knows up to 1\); it is left as it is/);
  assert.ok(fs.readFileSync(newer).equals(before), 'left as it is');
  const junk = path.join(dir, 'junk.db');
  fs.writeFileSync(junk, 'this is not a database, just text that is long enough to look like a header....');
  const j = spawnSync(SERVER, ['--port', '0', '--model', MODEL, '--samples', junk], { encoding: 'utf8', timeout: 5000 });
  assert.equal(j.status, 1);
  assert.match(j.stderr, /junk\.db: /);
});

// Writers post as fast as they can; the server is killed with SIGKILL at a random moment; on
// restart every sample that got its 201 is there, with its label, and the file is sound.
test('SIGKILL at random moments loses no acknowledged sample', async () => {
  const db = path.join(dir, 'kill.db');
  const acked = new Map();
  for (let round = 0; round < 6; round++) {
    const s = await startServer(['--model', MODEL, '--samples', db, '--threads', '2', '--samples-rate', '0']);
    let stop = false;
    const writer = async (w) => {
      for (let i = 0; !stop; i++) {
        const label = (w + i) % 10;
        try {
          const r = await post(s.port, { label, pixels: BAR });
          if (r.status === 201) acked.set(r.json().id, label);
          else throw new Error(`${r.status} ${r.text}`);
        } catch (e) {
          if (!stop && !/ECONNRESET|ECONNREFUSED|socket hang up/.test(String(e))) throw e;
          return;
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 500));
    s.proc.kill('SIGKILL');
    await s.exited;
    stop = true;
    await Promise.all(writers);
  }
  assert.ok(acked.size >= 20, `only ${acked.size} samples acknowledged`);
  assert.equal(sqlite(db, 'PRAGMA integrity_check'), 'ok');
  const s = await startServer(['--model', MODEL, '--samples', db, '--samples-rate', '0']);
  try {
    const all = new Map();
    for (let offset = 0; ; offset += 1000) {
      const page = JSON.parse((await raw(s.port, 'GET', `/samples?limit=1000&offset=${offset}`)).text);
      for (const x of page.samples) all.set(x.id, x.label);
      if (page.samples.length < 1000) break;
    }
    for (const [id, label] of acked) assert.equal(all.get(id), label, `sample ${id}`);
  } finally {
    assert.equal(await s.stop(), 0);
  }
  assert.equal(sqlite(db, 'PRAGMA integrity_check'), 'ok');
});
