// cors.test.mjs - a page from one origin calling digits-server on another, in real Chromium:
// with --cors naming the page's origin the browser's preflight passes and the page reads the
// answer and its X-Request-Id; without it the browser refuses the answer to the page.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, mainModel } from './lib.mjs';

let browser, page, site, allowing, plain;

before(async () => {
    site = await startServer([mainModel()]); // serves the page: its origin is the caller
    const origin = new URL(site.url).origin;
    allowing = await startServer([mainModel()], 0, ['--cors', origin]);
    plain = await startServer([mainModel()]);
    browser = await launch();
    page = await (await browser.newContext()).newPage();
    await page.goto(site.url);
});

after(async () => {
    await browser?.close();
    for (const s of [site, allowing, plain]) await s?.stop();
});

// From the page: a JSON /predict (Content-Type: application/json needs a preflight) to url.
function callFromPage(url) {
    return page.evaluate(async (u) => {
        const pixels = Array.from({ length: 784 }, (_, i) =>
            (i % 28 >= 13 && i % 28 <= 14 && i >= 4 * 28 && i < 24 * 28 ? 1 : 0));
        try {
            const r = await fetch(`${u}predict`, { method: 'POST',
                headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'from-page-1' },
                body: JSON.stringify({ pixels }) });
            return { status: r.status, id: r.headers.get('x-request-id'), body: await r.json() };
        } catch (e) {
            return { error: String(e) };
        }
    }, url);
}

test('--cors with the page\'s origin: the preflight passes and the page reads the answer', async () => {
    const r = await callFromPage(allowing.url);
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.status, 200);
    assert.equal(r.body.prediction, 1);
    assert.equal(r.id, 'from-page-1', 'X-Request-Id is exposed to the page');
});

test('without --cors the browser refuses the answer to the page', async () => {
    const r = await callFromPage(plain.url);
    assert.match(r.error || '', /TypeError: Failed to fetch/, JSON.stringify(r));
});
