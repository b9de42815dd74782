// cli.test.mjs - digits-train and digits-eval as a user runs them: help, version, errors,
// reproducible model files, failing early on an unwritable output, and the seed004 preset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const build = process.env.DIGITS_BUILD || 'build';
const data = process.env.MNIST_DIR || 'data/mnist';
const bins = ['digits-train', 'digits-eval', 'digits-server'];

function run(bin, args, env = {}) {
  const r = spawnSync(join(build, bin), args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 600_000 });
  if (r.error) throw r.error;
  return r;
}

test('every binary prints --help and --version and exits 0', () => {
  for (const bin of bins) {
    const h = run(bin, ['--help']);
    assert.equal(h.status, 0, `${bin} --help`);
    assert.match(h.stdout, /usage:/i, `${bin} --help prints usage`);
    const v = run(bin, ['--version']);
    assert.equal(v.status, 0);
    assert.match(v.stdout, new RegExp(`${bin} \\d+\\.\\d+\\.\\d+`));
  }
});

test('bad flags are rejected with a message naming the flag', () => {
  const cases = [
    ['digits-train', ['--epochs', 'zero'], /--epochs: bad value 'zero'/],
    ['digits-train', ['--activation', 'gelu'], /relu, sigmoid or tanh/],
    ['digits-train', ['--arch', 'dense:10,pool:2'], /last layer must be dense/],
    ['digits-train', ['--bogus'], /^digits-train: unknown flag --bogus \(see digits-train --help\)\n$/],
    ['digits-eval', [], /--model FILE is required/],
    ['digits-train', ['--data', data, '--keep-best'], /--keep-best needs --val N/],
  ];
  for (const [bin, args, re] of cases) {
    const r = run(bin, args);
    assert.equal(r.status, 2, `${bin} ${args.join(' ')} exits 2`);
    assert.match(r.stderr, re);
  }
});

// One style of error and exit status 2 for bad flags in every program, and whole flag names
// only: getopt_long alone would take --hid for --hidden.
test('every program: the same words and exit 2 for unknown, abbreviated and valueless flags', () => {
  const programs = {
    'digits-train': { flag: '--threads', prefix: ['--hidd', '--hidden'], bare: '--quiet' },
    'digits-eval': { flag: '--threads', prefix: ['--mod', '--model'], bare: '--json' },
    'digits-server': { flag: '--threads', prefix: ['--max-body-mem', '--max-body-memory'], bare: '--quiet' },
    'make-sets': { flag: '--threads', prefix: ['--fix', '--fixtures'], bare: '--help' },
  };
  for (const [bin, { flag, prefix, bare }] of Object.entries(programs)) {
    const table = [
      [['--bogus'], `${bin}: unknown flag --bogus (see ${bin} --help)\n`],
      [['--bogus=1'], `${bin}: unknown flag --bogus (see ${bin} --help)\n`],
      [[prefix[0], '1'], `${bin}: unknown flag ${prefix[0]} (see ${bin} --help; did you mean ${prefix[1]}?)\n`],
      [[flag], `${bin}: ${flag} needs a value (see ${bin} --help)\n`],
      [[`${bare}=1`], `${bin}: ${bare} takes no value (see ${bin} --help)\n`],
      [['-z'], `${bin}: unknown flag -z (see ${bin} --help)\n`],
    ];
    for (const [args, want] of table) {
      const r = run(bin, args);
      assert.equal(r.status, 2, `${bin} ${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, want, `${bin} ${args.join(' ')}`);
    }
  }
  // a flag's value may look like a flag: it is the value, not an abbreviation
  const r = run('digits-eval', ['--model', '--mod']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^digits-eval: --mod: /);
});

test('missing data is reported with how to get it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'digits-cli-'));
  try {
    const r = run('digits-train', ['--data', dir, '--out', join(dir, 'm.model'), '--quiet']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /make data/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('an unwritable output is reported before any training', () => {
  const r = run('digits-train', ['--data', data, '--out', '/nonexistent-dir/m.model', '--quiet']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot write the model next to \/nonexistent-dir\/m.model: No such file/);
});

test('same seed, flags and threads give a bit-identical model file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'digits-cli-'));
  try {
    const args = ['--data', data, '--hidden', '32', '--batch', '64', '--iterations', '300',
                  '--threads', '2', '--seed', '7', '--quiet', '--no-reports'];
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    // the same --out both times: the command line is part of the recorded metadata
    const out = join(dir, 'm.model');
    let r = run('digits-train', [...args, '--out', out], env);
    assert.equal(r.status, 0, r.stderr);
    const a = readFileSync(out);
    r = run('digits-train', [...args, '--out', out], env);
    assert.equal(r.status, 0, r.stderr);
    const b = readFileSync(out);
    assert.ok(a.length > 100000);
    assert.ok(a.equals(b), 'model files differ');
    const c = run('digits-train', [...args, '--seed', '8', '--out', out], env);
    assert.equal(c.status, 0);
    assert.ok(!a.equals(readFileSync(out)), 'another seed gives another model');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('seed004 preset reaches at least 94% and writes its reports; digits-eval agrees', () => {
  const dir = mkdtempSync(join(tmpdir(), 'digits-cli-'));
  try {
    const out = join(dir, 'seed004.model');
    const r = run('digits-train', ['--preset', 'seed004', '--data', data, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const m = r.stdout.match(/test accuracy ([\d.]+)%/);
    assert.ok(m, r.stdout.slice(-500));
    assert.ok(Number(m[1]) >= 94.0, `seed004 reached ${m[1]}%`);
    assert.match(r.stdout, /confusion matrix/);
    assert.match(r.stdout, /examples \(predicted \/ true\)/);
    for (const ext of ['history.csv', 'curves.svg', 'samples.png'])
      assert.ok(existsSync(join(dir, `seed004.${ext}`)), `${ext} written`);
    const csv = readFileSync(join(dir, 'seed004.history.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 11, 'header + 10 epochs');
    // (a path with a quote and a backslash: the JSON line must still parse)
    const odd = join(dir, 'a"b\\c.model');
    writeFileSync(odd, readFileSync(out));
    const e = run('digits-eval', ['--model', odd, '--data', data, '--json']);
    assert.equal(e.status, 0, e.stderr);
    const j = JSON.parse(e.stdout);
    assert.equal(j.model, odd);
    assert.equal(j.n, 10000);
    assert.equal(j.accuracy.toFixed(4), (Number(m[1]) / 100).toFixed(4));
    assert.equal(j.confusion.flat().reduce((s, x) => s + x, 0), 10000);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('--val holds out images and --keep-best restores the best validation epoch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'digits-cli-'));
  try {
    const r = run('digits-train', ['--data', data, '--hidden', '16', '--epochs', '3', '--val', '2000',
                                   '--keep-best', '--aug-elastic', '2', '--out', join(dir, 'v.model'),
                                   '--no-reports']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /58000 training/);
    assert.equal((r.stdout.match(/validation loss/g) || []).length, 3);
    const best = r.stdout.match(/keeping the weights of epoch (\d) \(validation accuracy ([\d.]+)%\)/);
    assert.ok(best, r.stdout);
    const accs = [...r.stdout.matchAll(/validation loss [\d.]+ acc +([\d.]+)%/g)].map((m) => Number(m[1]));
    assert.equal(Number(best[2]), Math.max(...accs));
    assert.equal(accs.indexOf(Math.max(...accs)) + 1, Number(best[1]));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('--init refuses a model of other layers, and --nondigits grows a 10-unit last layer to 11', () => {
  const dir = mkdtempSync(join(tmpdir(), 'digits-init-'));
  try {
    const mlp = join(dir, 'mlp.model');
    const base = ['--data', data, '--hidden', '16', '--iterations', '20', '--batch', '64', '--lr', '0.05',
      '--seed', '3', '--no-reports', '--quiet'];
    let r = run('digits-train', [...base, '--out', mlp]);
    assert.equal(r.status, 0, r.stderr);

    r = run('digits-train', [...base, '--hidden', '32', '--init', mlp, '--out', join(dir, 'x.model')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--init .*mlp\.model: layer 1 is dense:16, the network's is dense:32/);
    r = run('digits-train', [...base, '--init', join(dir, 'missing.model'), '--out', join(dir, 'x.model')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--init: .*missing\.model/);

    const nd = join(dir, 'nd.model');
    r = run('digits-train', [...base.filter((a) => a !== '--quiet'), '--init', mlp, '--nondigits', '500',
      '--out', nd]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /dense:16,relu,dense:11, /);
    assert.match(r.stdout, /not a digit: threshold p >= [\d.e-]+ \(answers 99\.50% of 5000 held-out/);
    assert.match(r.stdout, /generated non-digits \(other seed\): [\d.]+% rejected/);
    assert.ok(existsSync(nd));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
