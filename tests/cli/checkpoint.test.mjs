// checkpoint.test.mjs - training never loses work: a run killed with SIGKILL and resumed from
// its last checkpoint ends with the same model file, byte for byte, as an uninterrupted run;
// Ctrl-C writes a checkpoint and says how to resume; damaged checkpoints are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const build = process.env.DIGITS_BUILD || 'build';
const data = process.env.MNIST_DIR || 'data/mnist';
const train = join(build, 'digits-train');
const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };

function runSync(args) {
  const r = spawnSync(train, args, { encoding: 'utf8', env, timeout: 600_000 });
  if (r.error) throw r.error;
  return r;
}

async function waitFor(path, ms) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(5))
    if (existsSync(path)) return true;
  return false;
}

function exited(child) {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

test('a run killed with SIGKILL and resumed ends with the same model as an uninterrupted one', async () => {
  // the resumed run parses the original command line back: paths with a space and a quote
  const dir = mkdtempSync(join(tmpdir(), "digits ckpt 'q-"));
  try {
    const out = join(dir, 'm.model'), ckpt = join(dir, 'm.ckpt');
    const args = ['--data', data, '--hidden', '32', '--batch', '64', '--iterations', '3000',
                  '--checkpoint-every', '40', '--seed', '3', '--threads', '2', '--no-reports',
                  '--quiet', '--out', out];
    let r = runSync(args);
    assert.equal(r.status, 0, r.stderr);
    const whole = readFileSync(out);
    assert.ok(!existsSync(ckpt), 'a finished run removes its checkpoint');
    rmSync(out);

    const child = spawn(train, args, { env, stdio: 'ignore' });
    const done = exited(child);
    assert.ok(await waitFor(ckpt, 60_000), 'a checkpoint appears');
    child.kill('SIGKILL');
    const { signal } = await done;
    assert.equal(signal, 'SIGKILL', 'the run was killed before it finished');
    assert.ok(!existsSync(out), 'no model from the killed run');

    r = runSync(['--resume', ckpt, '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(whole), 'resumed model differs from the uninterrupted one');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('SIGINT finishes the step, writes a checkpoint and says how to resume', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'digits ckpt-'));
  try {
    const out = join(dir, 'i.model'), ckpt = join(dir, 'i.ckpt');
    const child = spawn(train, ['--data', data, '--hidden', '16', '--epochs', '50', '--out', out,
                                '--no-reports', '--checkpoint-every', '100'], { env });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const done = exited(child);
    assert.ok(await waitFor(ckpt, 60_000), 'training is under way');
    child.kill('SIGINT');
    const { code } = await done;
    assert.equal(code, 130);
    assert.match(stderr, /interrupted at step \d+ .*checkpoint written to .*i\.ckpt/s);
    // a command that can be pasted: the path has a space, so it is quoted
    assert.match(stderr, /resume with: digits-train --resume '[^'\n]*digits ckpt-[^'\n]*i\.ckpt'\n/);
    assert.ok(existsSync(ckpt));
    assert.ok(!existsSync(out), 'an interrupted run writes no final model');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a damaged or foreign checkpoint is refused with a reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'digits-ckpt-'));
  try {
    const out = join(dir, 'd.model'), ckpt = join(dir, 'd.ckpt');
    const child = spawnSync(train, ['--data', data, '--hidden', '8', '--iterations', '30',
      '--checkpoint-every', '10', '--out', out, '--quiet', '--no-reports'], { env });
    assert.equal(child.status, 0);
    // make a checkpoint by interrupting via a tiny run: reuse the model file as a foreign file
    writeFileSync(ckpt, readFileSync(out));
    let r = runSync(['--resume', ckpt, '--quiet']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not a digits checkpoint/);
    const missing = runSync(['--resume', join(dir, 'nope.ckpt'), '--quiet']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.ckpt: opening: No such file/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
