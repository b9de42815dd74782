// io.test.mjs - digits-train and digits-eval fail early and loudly on inputs and outputs they
// cannot use (issue 21): a resume on other data, an --out that is a directory, sets of two image
// sizes, a report or stdout on a full disk, files that are FIFOs or devices. Tiny data sets are
// generated here (IDX files of a few hundred images), so each test takes seconds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  mkdtempSync, rmSync, existsSync, mkdirSync, writeFileSync, readFileSync, copyFileSync, openSync,
  closeSync, symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const build = process.env.DIGITS_BUILD || 'build';
const data = process.env.MNIST_DIR || 'data/mnist';
const train = join(build, 'digits-train');
const evalBin = join(build, 'digits-eval');
const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };

let dir;
before(() => { dir = mkdtempSync(join(tmpdir(), 'digits-io-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

function run(bin, args, opts = {}) {
  const r = spawnSync(bin, args, { encoding: 'utf8', env, timeout: 120_000, ...opts });
  if (r.error) throw r.error;
  return r;
}

function idx(dims, body) {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, body]);
}

// An MNIST-like folder: n training and m test images of side x side (a bar whose place is the
// label, with some noise from seed), as the IDX files nn_dataset_load_mnist reads.
function makeSet(name, { n = 600, m = 100, side = 28, testSide = side, seed = 1 } = {}) {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const images = (k, w) => {
    const px = Buffer.alloc(k * w * w);
    for (let i = 0; i < k; i++) {
      const label = i % 10, col = Math.floor(((label + 0.5) * w) / 10);
      for (let y = 0; y < w; y++) {
        for (let x = 0; x < w; x++) {
          const on = Math.abs(x - col) <= 1 && y > 2 && y < w - 3;
          px[i * w * w + y * w + x] = on ? 200 + Math.floor(rnd() * 55) : Math.floor(rnd() * 30);
        }
      }
    }
    return px;
  };
  const labels = (k) => Buffer.from(Array.from({ length: k }, (_, i) => i % 10));
  writeFileSync(join(d, 'train-images-idx3-ubyte'), idx([n, side, side], images(n, side)));
  writeFileSync(join(d, 'train-labels-idx1-ubyte'), idx([n], labels(n)));
  writeFileSync(join(d, 't10k-images-idx3-ubyte'), idx([m, testSide, testSide], images(m, testSide)));
  writeFileSync(join(d, 't10k-labels-idx1-ubyte'), idx([m], labels(m)));
  return d;
}

const tiny = ['--hidden', '8', '--batch', '32', '--threads', '1', '--no-reports', '--quiet'];

async function waitFor(path, ms) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(5)) if (existsSync(path)) return true;
  return false;
}

// A checkpoint of a run on set, interrupted with SIGINT (exit 130) as soon as one is written;
// the whole run would take some seconds (about 15000 steps a second here).
async function interruptedRun(set, out, iterations, extra = []) {
  const ckpt = out.replace(/\.model$/, '.ckpt');
  const child = spawn(train, ['--data', set, ...tiny.filter((a) => a !== '--quiet'),
    '--iterations', String(iterations),
    '--eval-every', '0', '--checkpoint-every', '20', '--out', out, ...extra],
  { env, stdio: 'ignore' });
  const code = new Promise((resolve) => child.on('exit', (c) => resolve(c)));
  assert.ok(await waitFor(ckpt, 60_000), 'a checkpoint appears');
  child.kill('SIGINT');
  assert.equal(await code, 130);
  return ckpt;
}

test('--resume on other images of the same count is refused with both SHA-256s', async () => {
  const set = makeSet('resume-a');
  const ckpt = await interruptedRun(set, join(dir, 'r.model'), 1_000_000);
  // The same folder with one pixel changed, and a copy of it given with --data.
  const other = makeSet('resume-b');
  const img = readFileSync(join(set, 'train-images-idx3-ubyte'));
  img[16 + 5] ^= 0xff;
  writeFileSync(join(other, 'train-images-idx3-ubyte'), img);
  let r = run(train, ['--resume', ckpt, '--data', other, '--quiet']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /--resume .*r\.ckpt: the run was trained on images with SHA-256 [0-9a-f]{64}, the training images in .*resume-b have SHA-256 [0-9a-f]{64}; resume on the data/);
  assert.ok(!existsSync(join(dir, 'r.model')), 'no model from data it was not trained on');
  // The data the run recorded (--data resume-a) changed in place: refused too.
  writeFileSync(join(set, 'train-images-idx3-ubyte'), img);
  r = run(train, ['--resume', ckpt, '--quiet']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /the training images in .*resume-a have SHA-256/);
  assert.ok(existsSync(ckpt), 'the checkpoint is kept');
});

test('--resume of a --val run prepares the same training set and finishes', async () => {
  const set = makeSet('resume-val');
  const out = join(dir, 'v.model');
  const ckpt = await interruptedRun(set, out, 60_000, ['--val', '100']);
  // --val and --data come from the command the checkpoint records (it used to be resumed on
  // all 600 images, and refused: "checkpoint was made on 500 training images").
  const r = run(train, ['--resume', ckpt]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /500 training \/ 100 test images.*\(resumed\)/);
  assert.ok(existsSync(out));
  assert.ok(!existsSync(ckpt), 'a finished run removes its checkpoint');
});

test('--out naming a directory is refused before any training', () => {
  const set = makeSet('out-dir');
  const out = join(dir, 'a-dir.model');
  mkdirSync(out);
  const t0 = Date.now();
  let r = run(train, ['--data', set, ...tiny, '--epochs', '100000', '--out', out]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^digits-train: the model .*a-dir\.model is a directory, not a file it can replace$/m);
  assert.ok(Date.now() - t0 < 10_000, `refused after ${Date.now() - t0} ms`);
  // A report path that is a directory is refused before training too.
  mkdirSync(join(dir, 'rep.curves.svg'));
  r = run(train, ['--data', set, ...tiny.filter((a) => a !== '--no-reports'), '--epochs', '100000',
    '--out', join(dir, 'rep.model')]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /the report .*rep\.curves\.svg is a directory/);
  assert.ok(!existsSync(join(dir, 'rep.model')));
});

test('training and test images of different sizes are refused before any training', () => {
  const set = makeSet('sizes', { side: 28, testSide: 20 });
  const out = join(dir, 's.model');
  const t0 = Date.now();
  const r = run(train, ['--data', set, ...tiny, '--epochs', '100000', '--out', out]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /sizes: the training images are 28x28 but the test images 20x20; both sets must have images of one size/);
  assert.ok(Date.now() - t0 < 10_000, `refused after ${Date.now() - t0} ms`);
  assert.ok(!existsSync(out));
  const v = run(train, ['--data', makeSet('val-big', { n: 50 }), ...tiny, '--val', '60', '--out', out]);
  assert.equal(v.status, 1, v.stderr);
  assert.match(v.stderr, /--val 60: the training set has 50 images/);
});

// A full disk for the reports: a file size limit (with SIGXFSZ ignored, write(2) fails with EFBIG
// as it fails with ENOSPC on a full disk) that the model (~27 KB) fits and the PNG (~68 KB) not.
test('a report that cannot be written fails the run; so does a summary on a full stdout', () => {
  const out = join(dir, 'full.model');
  const args = ['--data', data, '--hidden', '8', '--iterations', '30', '--threads', '2', '--out', out];
  const r = run('bash', ['-c', 'trap "" XFSZ; ulimit -f 48; exec "$@"', 'bash', train, ...args,
    '--quiet']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /full\.samples\.png: writing temporary file: File too large/);
  assert.match(r.stderr, /the model .*full\.model is written, but 1 of its reports is not/);
  assert.ok(existsSync(out) && existsSync(join(dir, 'full.curves.svg')));

  const fd = openSync('/dev/full', 'w');
  try {
    const s = run(train, [...args, '--no-reports'], { stdio: ['ignore', fd, 'pipe'] });
    assert.equal(s.status, 1, s.stderr);
    assert.match(s.stderr, /digits-train: writing to standard output: No space left on device/);
    const e = run(evalBin, ['--model', out, '--data', data, '--json'], { stdio: ['ignore', fd, 'pipe'] });
    assert.equal(e.status, 1, e.stderr);
    assert.match(e.stderr, /digits-eval: writing to standard output: No space left on device/);
  } finally { closeSync(fd); }
});

test('FIFOs and devices as data, checkpoint or model are refused at once', () => {
  const set = makeSet('fifo');
  const fifo = join(dir, 'pipe');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const fifoSet = join(dir, 'fifo-set');
  mkdirSync(fifoSet);
  for (const f of ['train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'])
    copyFileSync(join(set, f), join(fifoSet, f));
  symlinkSync(fifo, join(fifoSet, 'train-images-idx3-ubyte'));
  const cases = [
    [train, ['--data', fifoSet, ...tiny, '--out', join(dir, 'f.model')], /train-images-idx3-ubyte: not a regular file \(a FIFO\)/],
    [train, ['--resume', fifo], /--resume: .*pipe: not a regular file \(a FIFO\)/],
    [train, ['--data', set, ...tiny, '--init', '/dev/zero', '--out', join(dir, 'f.model')], /--init: \/dev\/zero: not a regular file \(a character device\)/],
    [evalBin, ['--model', fifo], /pipe: not a regular file \(a FIFO\)/],
  ];
  for (const [bin, args, re] of cases) {
    const t0 = Date.now();
    const r = run(bin, args, { timeout: 10_000 });
    assert.notEqual(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.ok(Date.now() - t0 < 5000, `${args.join(' ')}: ${Date.now() - t0} ms`);
  }
});

test('digits-eval --set refuses a FIFO or a device as a list or an image, at once', () => {
  const sets = join(dir, 'sets');
  mkdirSync(join(sets, 'paper'), { recursive: true });
  mkdirSync(join(sets, 'numbers'), { recursive: true });
  assert.equal(spawnSync('mkfifo', [join(sets, 'numbers', 'labels.tsv')]).status, 0);
  writeFileSync(join(sets, 'paper', 'labels.tsv'), 'file\tlabel\nzero.png\t7\n');
  symlinkSync('/dev/zero', join(sets, 'paper', 'zero.png'));
  const shipped = 'models/mnist-mlp.model'; // the tests run from the repository's root
  let t0 = Date.now();
  let r = run(evalBin, ['--model', shipped, '--set', 'numbers', '--sets', sets], { timeout: 10_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /numbers\/labels\.tsv: not a regular file \(a FIFO\)/);
  assert.ok(Date.now() - t0 < 5000);
  t0 = Date.now();
  r = run(evalBin, ['--model', shipped, '--set', 'paper', '--sets', sets], { timeout: 10_000 });
  assert.match(r.stderr, /1 files could not be evaluated, e\.g\. .*zero\.png: not a regular file \(a character device\)/);
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
});
