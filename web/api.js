// api.js - the page's only door to the server (the JSON API in README.md). Every call takes an
// AbortSignal; failures are thrown as ApiError with `offline` set when the server could not be
// reached at all (as opposed to answering with an error), so the caller knows to start
// polling /healthz.

export class ApiError extends Error {
    constructor(message, { status = 0, offline = false } = {}) {
        super(message);
        this.name = 'ApiError';
        this.status = status;
        this.offline = offline;
    }
}

async function call(path, init = {}) {
    let res;
    try {
        res = await fetch(path, { cache: 'no-store', ...init });
    } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw new ApiError('cannot reach the server', { offline: true });
    }
    let body = null;
    try {
        body = await res.json();
    } catch (e) {
        if (e.name === 'AbortError') throw e;
    }
    if (!res.ok) {
        const detail = body && typeof body.error === 'string' ? body.error : res.statusText;
        // 502/503/504 from the server or a proxy in front of it: treat as "not available".
        throw new ApiError(detail || `HTTP ${res.status}`, {
            status: res.status,
            offline: res.status >= 502,
        });
    }
    if (body === null) throw new ApiError('the server sent an answer that is not JSON');
    return body;
}

export function health(signal) {
    return call('healthz', { signal });
}

export function models(signal) {
    return call('models', { signal });
}

// image: {width, height, pixels} (or {pixels} of 784). Returns one answer.
export function predict(image, { model, returnInput = true, signal } = {}) {
    const body = { ...image, return_input: returnInput };
    if (model) body.model = model;
    return call('predict', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        signal,
    });
}

// The same image through several models in one request; returns the answers in order.
export async function predictEach(image, names, { inputFor, signal } = {}) {
    const images = names.map((name) => ({ ...image, model: name, return_input: name === inputFor }));
    const out = await call('predict', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ images }),
        signal,
    });
    if (!out || !Array.isArray(out.results)) throw new ApiError('batch answer without "results"');
    return out.results;
}

// An image file (photo, scan) sent as its own bytes through the server's decoder.
export function predictFile(file, { model, returnInput = true, signal } = {}) {
    const q = new URLSearchParams();
    if (model) q.set('model', model);
    if (returnInput) q.set('return_input', '1');
    return call(`predict?${q}`, {
        method: 'POST',
        headers: { 'Content-Type': file.type || 'application/octet-stream' },
        body: file,
        signal,
    });
}

// A whole number (POST /read): the drawing as {width, height, pixels}, or an image File sent as
// its own bytes. Answers {number, digits:[{prediction, probabilities, box}], ...}; a drawing
// with no ink answers number null with reason "blank".
export function read(image, { model, signal } = {}) {
    const body = { ...image };
    if (model) body.model = model;
    return call('read', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        signal,
    });
}

export function readFile(file, { model, signal } = {}) {
    const q = new URLSearchParams();
    if (model) q.set('model', model);
    return call(`read?${q}`, {
        method: 'POST',
        headers: { 'Content-Type': file.type || 'application/octet-stream' },
        body: file,
        signal,
    });
}

// Keeps a sample (POST /samples): the drawing as {width, height, pixels} or an image File, with
// the digit the person says it is. Answers {id, label, prediction, model}.
export function addSample(source, label, { model, signal } = {}) {
    const q = new URLSearchParams({ label: String(label) });
    if (model) q.set('model', model);
    const file = source instanceof Blob;
    return call(`samples?${q}`, {
        method: 'POST',
        headers: { 'Content-Type': file ? (source.type || 'application/octet-stream') : 'application/json' },
        body: file ? source : JSON.stringify(source),
        signal,
    });
}

// How many samples are kept: {total}; an ApiError with status 404 when the server keeps none.
export function samplesCount(signal) {
    return call('samples?limit=1', { signal });
}

// One page of kept samples ({total, samples:[{id, label, prediction, ...}]}), optionally of one label.
export function samplesPage({ label, limit = 24, offset = 0, signal } = {}) {
    const q = new URLSearchParams({ limit: String(limit), offset: String(offset) });
    if (label !== undefined) q.set('label', String(label));
    return call(`samples?${q}`, { signal });
}

export function deleteSample(id, { signal } = {}) {
    return call(`samples/${id}`, { method: 'DELETE', signal });
}
