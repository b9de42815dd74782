// corpus.test.mjs - the shared bad-input corpora (../shared/corpus, see its README) sent to the
// real server: JSONTestSuite files as /predict bodies, PngSuite files as image uploads.
// A missing corpus is a failure, never a skip.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir, trainModel, startServer, raw, SHARED_CORPUS } from './lib.mjs';

let dir;
let srv;

before(async () => {
  dir = tmpdir();
  const model = trainModel(dir, 'corpus', { iterations: 200 });
  srv = await startServer(['--model', model]);
});

after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

function corpus(kind, ext) {
  const d = path.join(SHARED_CORPUS, kind);
  assert.ok(fs.existsSync(d), `corpus ${d} is missing (expected next to the repository)`);
  const files = fs.readdirSync(d).filter((f) => f.endsWith(ext)).sort();
  assert.ok(files.length > 100, `only ${files.length} files in ${d}`);
  return files.map((f) => [f, fs.readFileSync(path.join(d, f))]);
}

async function healthy() {
  const res = await raw(srv.port, 'GET', '/healthz');
  assert.equal(res.status, 200);
}

test('every JSONTestSuite file as a /predict body: n_* and y_* get 400, nothing crashes', async () => {
  const files = corpus('json', '.json');
  const seen = { n: 0, y: 0, i: 0 };
  for (const [name, body] of files) {
    const res = await raw(srv.port, 'POST', '/predict', {
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length }, body });
    const kind = name[0];
    seen[kind] = (seen[kind] || 0) + 1;
    assert.ok(res.status < 500, `${name}: ${res.status} ${res.text}`);
    if (kind === 'n' || kind === 'y') assert.equal(res.status, 400, `${name}: ${res.text}`);
    assert.equal(typeof res.json().error, 'string', name);
  }
  assert.ok(seen.n > 100 && seen.y > 50, JSON.stringify(seen));
  await healthy();
});

test('every PngSuite file as an image/png upload: valid ones 200, corrupt x* ones 400', async () => {
  const files = corpus('png', '.png');
  // stb_image does not check chunk CRCs: these two decode (see ../shared/corpus/README.md).
  const crcOnly = new Set(['xcsn0g01.png', 'xhdn0g08.png']);
  for (const [name, body] of files) {
    const res = await raw(srv.port, 'POST', '/predict', {
      headers: { 'Content-Type': 'image/png', 'Content-Length': body.length }, body });
    if (name.startsWith('x') && !crcOnly.has(name)) {
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.match(res.json().error, /png|PNG|image/, name);
    } else if (crcOnly.has(name)) {
      assert.ok(res.status === 200 || res.status === 400, `${name}: ${res.status}`);
    } else {
      assert.equal(res.status, 200, `${name}: ${res.text}`);
      const j = res.json();
      assert.ok(j.prediction === null || (j.prediction >= 0 && j.prediction <= 9), name);
    }
  }
  await healthy();
});

test('PngSuite files sent with the wrong type or truncated anywhere get 4xx, never a crash', async () => {
  const files = corpus('png', '.png').slice(0, 40);
  for (const [name, body] of files) {
    for (const cut of [8, 16, 33, 50, Math.floor(body.length / 2), body.length - 12]) {
      const part = body.subarray(0, Math.max(0, cut));
      const res = await raw(srv.port, 'POST', '/predict', {
        headers: { 'Content-Type': 'image/gif', 'Content-Length': part.length }, body: part });
      assert.ok(res.status === 200 || res.status === 400, `${name} cut at ${cut}: ${res.status}`);
    }
  }
  await healthy();
});
