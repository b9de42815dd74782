// read.test.mjs - POST /read on the real server with the shipped CNN: a two-digit number drawn
// in the test, blank, too many digits, wrong method, batch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, ROOT } from './lib.mjs';

let srv;
before(async () => {
  srv = await startServer(['--model', path.join(ROOT, 'models/mnist-cnn.model')]);
});
after(async () => { await srv.stop('SIGTERM'); });

function bars(n, w = 30 * n, h = 28) {
  const px = new Array(w * h).fill(0);
  for (let k = 0; k < n; k++)
    for (let y = 4; y < 24; y++) for (let x = 10 + 30 * k; x < 13 + 30 * k; x++) px[y * w + x] = 1;
  return { width: w, height: h, pixels: px };
}

async function read(obj) {
  const res = await fetch(`${srv.url}/read`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(obj) });
  return { status: res.status, body: await res.json() };
}

test('two strokes are read as the number 11 with two boxes', async () => {
  const { status, body } = await read(bars(2));
  assert.equal(status, 200);
  assert.equal(body.number, '11');
  assert.equal(body.digits.length, 2);
  assert.deepEqual(body.digits[0].box, [10, 4, 3, 20]);
  assert.equal(body.digits[0].probabilities.length, 10);
  assert.equal(body.model, 'mnist-cnn');
});

test('a blank image has no number', async () => {
  const { status, body } = await read({ width: 4, height: 2, pixels: new Array(8).fill(0) });
  assert.equal(status, 200);
  assert.equal(body.number, null);
  assert.equal(body.reason, 'blank');
  assert.deepEqual(body.digits, []);
});

test('more than 16 digits is a 400 that says so', async () => {
  const { status, body } = await read(bars(17));
  assert.equal(status, 400);
  assert.match(body.error, /more than 16 digits/);
});

test('GET /read is 405 and a batch gives one result per image', async () => {
  const res = await fetch(`${srv.url}/read`);
  assert.equal(res.status, 405);
  const { status, body } = await read({ images: [bars(1), bars(3)] });
  assert.equal(status, 200);
  assert.deepEqual(body.results.map((r) => r.number), ['1', '111']);
});
