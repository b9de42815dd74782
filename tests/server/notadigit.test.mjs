// notadigit.test.mjs - "not a digit" on the real server with the shipped CNN (11 classes): an
// X, a filled square, noise and a scribble drawn in the test are rejected by /predict and make
// /read answer no number; a drawn 1 is still a 1; /models shows the threshold.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, ROOT } from './lib.mjs';

let srv;
before(async () => {
  srv = await startServer(['--model', path.join(ROOT, 'models/mnist-cnn.model')]);
});
after(async () => { await srv.stop('SIGTERM'); });

const S = 140;

// A canvas S x S with round-pen segments (width pen) through the points, like the page draws.
function drawing(strokes, pen = 10) {
  const px = new Array(S * S).fill(0);
  for (const pts of strokes)
    for (let i = 0; i + 1 < pts.length; i++) {
      const [x0, y0] = pts[i], [x1, y1] = pts[i + 1];
      const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
      for (let s = 0; s <= steps; s++) {
        const cx = x0 + ((x1 - x0) * s) / steps, cy = y0 + ((y1 - y0) * s) / steps;
        for (let y = Math.floor(cy - pen); y <= cy + pen; y++)
          for (let x = Math.floor(cx - pen); x <= cx + pen; x++)
            if (x >= 0 && y >= 0 && x < S && y < S && Math.hypot(x - cx, y - cy) <= pen / 2)
              px[y * S + x] = 1;
      }
    }
  return px;
}

const shapes = {
  X: drawing([[[30, 30], [110, 110]], [[110, 30], [30, 110]]]),
  'filled square': (() => {
    const px = new Array(S * S).fill(0);
    for (let y = 35; y < 105; y++) for (let x = 35; x < 105; x++) px[y * S + x] = 1;
    return px;
  })(),
  noise: (() => { // a fixed pseudo-random field, the same on every run
    let r = 12345;
    const px = new Array(S * S).fill(0);
    for (let i = 0; i < S * S; i++) {
      r = (r * 1103515245 + 12345) % 2147483648;
      px[i] = r / 2147483648 > 0.7 ? 1 : 0;
    }
    return px;
  })(),
  star: drawing([[[70, 20], [95, 115], [20, 55], [120, 55], [45, 115], [70, 20]]], 8),
};

async function post(route, pixels) {
  const res = await fetch(`${srv.url}${route}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ width: S, height: S, pixels }) });
  return { status: res.status, body: await res.json() };
}

for (const [name, px] of Object.entries(shapes))
  test(`a drawn ${name} is not a digit: /predict says so and still gives the probabilities`,
    async () => {
      const { status, body } = await post('/predict', px);
      assert.equal(status, 200);
      assert.equal(body.prediction, null, JSON.stringify(body));
      assert.equal(body.reason, 'not_a_digit');
      assert.equal(body.probabilities.length, 10);
      const sum = body.probabilities.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `digit probabilities sum to ${sum}`);
      assert.ok(body.not_a_digit >= 0.5 && body.not_a_digit <= 1, String(body.not_a_digit));
    });

test('a drawn 1 is still a 1, with a small not_a_digit', async () => {
  const { status, body } = await post('/predict', drawing([[[72, 15], [68, 125]]]));
  assert.equal(status, 200);
  assert.equal(body.prediction, 1, JSON.stringify(body));
  assert.ok(body.not_a_digit < 0.1, String(body.not_a_digit));
});

test('/read answers no number when a mark is not a digit, and says which', async () => {
  const { status, body } = await post('/read', shapes.X);
  assert.equal(status, 200);
  assert.equal(body.number, null, JSON.stringify(body));
  assert.equal(body.reason, 'not_a_digit');
  assert.equal(body.digits.length, 1);
  assert.equal(body.digits[0].prediction, null);
  assert.equal(body.digits[0].reason, 'not_a_digit');
});

test('/models shows the classes and the rejection threshold', async () => {
  const res = await fetch(`${srv.url}/models`);
  const body = await res.json();
  const cnn = (body.models || body).find((m) => m.name === 'mnist-cnn');
  assert.ok(cnn, JSON.stringify(body).slice(0, 300));
  assert.equal(cnn.classes, 11);
  assert.equal(cnn.not_a_digit.class, 10);
  assert.ok(cnn.not_a_digit.threshold > 0 && cnn.not_a_digit.threshold <= 1);
});

test('/metrics counts rejections apart from blanks', async () => {
  const before = await (await fetch(`${srv.url}/metrics`)).text();
  const count = (t) => Number((t.match(/^digits_predictions_total\{digit="not_a_digit"\} (\d+)$/m) || [])[1]);
  assert.ok(Number.isFinite(count(before)), 'a not_a_digit series');
  await post('/predict', shapes.X);
  const after = await (await fetch(`${srv.url}/metrics`)).text();
  assert.equal(count(after), count(before) + 1);
});
