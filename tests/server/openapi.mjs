// openapi.mjs - every answer the HTTP tests receive, checked against server/openapi.json, so
// that the document cannot drift from the server: lib.mjs runs checkAnswer on each response of
// raw() and of fetch() to a loopback address.
//
// An answer is found in the document by its path (templates such as /v2/models/{name} match
// one segment; a GET of any other path is a static file, /{file}), its method and its status
// (or the operation's "default"). It must carry X-Request-Id, its Content-Type must be one the
// document lists, and a JSON body must match that schema (ajv, JSON Schema 2020-12 as OpenAPI
// 3.1 uses); for binary /v2 infer answers, the JSON at the start of the body. A method the path
// does not have must be answered 405 with Allow (OPTIONS: the CORS preflight, 204 or 403).
// Not described, so not checked: libmicrohttpd's own answers to requests it cannot parse as
// HTTP (HTML bodies, no X-Request-Id: 400, 413, 414, 431, 505 before any route is known).
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OPENAPI_FILE = path.join(ROOT, 'server', 'openapi.json');
export const openapi = JSON.parse(fs.readFileSync(OPENAPI_FILE, 'utf8'));

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('binary', true);
ajv.addSchema(openapi, 'openapi.json');

const MHD_OWN = new Set([400, 413, 414, 431, 501, 505]);
const METHODS = ['get', 'head', 'post', 'put', 'delete', 'options', 'patch'];

// A JSON pointer as a URI fragment: ~ and / escaped (RFC 6901), then braces and the like
// percent-encoded.
const pointer = (parts) => parts.map((p) =>
  encodeURIComponent(String(p).replaceAll('~', '~0').replaceAll('/', '~1'))).join('/');

const templates = Object.keys(openapi.paths).filter((p) => p !== '/{file}').map((p) => ({
  path: p,
  re: new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  literal: !p.includes('{'),
}));

function pathItem(urlPath) {
  const hits = templates.filter((t) => t.re.test(urlPath));
  const best = hits.find((t) => t.literal) || hits[0];
  return best ? best.path : '/{file}';
}

const validators = new Map();
function schemaValidator(ptr) {
  if (!validators.has(ptr)) validators.set(ptr, ajv.compile({ $ref: `openapi.json#${ptr}` }));
  return validators.get(ptr);
}

function resolve(obj, ptrParts) {
  if (obj && obj.$ref) {
    const parts = obj.$ref.replace(/^#\//, '').split('/');
    let o = openapi;
    for (const p of parts) o = o[p.replaceAll('~1', '/').replaceAll('~0', '~')];
    return { obj: o, ptr: parts };
  }
  return { obj, ptr: ptrParts };
}

// answer: { method, url (path and query), status, header(name) -> value or undefined, body (Buffer) }
// Throws an Error saying what does not match.
export function checkAnswer({ method, url, status, header, body }) {
  const m = method.toLowerCase();
  const urlPath = url.split('?')[0];
  const where = `${method} ${urlPath} ${status}`;
  const requestId = header('x-request-id');
  if (!requestId && MHD_OWN.has(status)) return; // libmicrohttpd's own answer (see the top)
  if (!requestId || !/^[A-Za-z0-9._:-]{1,64}$/.test(requestId))
    throw new Error(`${where}: X-Request-Id missing or malformed: ${requestId}`);
  const itemPath = pathItem(urlPath);
  const item = openapi.paths[itemPath];
  let op = item[m] || (m === 'head' ? item.get : undefined);
  if (!op) {
    if (m === 'options' && (status === 204 || status === 403)) {
      if (status === 204 && !header('access-control-allow-methods'))
        throw new Error(`${where}: a preflight without Access-Control-Allow-Methods`);
      if (status === 204) return;
    } else if (status !== 405) {
      throw new Error(`${where}: ${itemPath} has no ${method} (${Object.keys(item).filter((k) => METHODS.includes(k))}), so 405 was due`);
    } else if (!header('allow')) {
      throw new Error(`${where}: 405 without Allow`);
    }
    op = { responses: { default: { $ref: '#/components/responses/Error' } } };
  }
  const opPtr = ['paths', itemPath, item[m] ? m : 'get'];
  const code = op.responses[String(status)] ? String(status) : 'default';
  if (!op.responses[code]) throw new Error(`${where}: status ${status} is not documented for ${itemPath}`);
  const { obj: res, ptr: resPtr } = resolve(op.responses[code], [...opPtr, 'responses', code]);
  if (m === 'head' || status === 204 || status === 304 || !res.content) {
    if (!res.content && body.length && m !== 'head')
      throw new Error(`${where}: documented without a body, ${body.length} bytes came`);
    return;
  }
  const type = (header('content-type') || '').trim();
  const base = type.split(';')[0].trim();
  const key = [type, base, '*/*'].find((k) => res.content[k]);
  if (!key) throw new Error(`${where}: Content-Type ${type} is not one of ${Object.keys(res.content)}`);
  if (key === '*/*') return; // a file of the page: any type
  let jsonText = null;
  if (base === 'application/json') {
    jsonText = body.toString('utf8');
  } else if (base === 'application/octet-stream' && header('inference-header-content-length')) {
    const n = Number(header('inference-header-content-length'));
    if (!Number.isInteger(n) || n < 2 || n > body.length)
      throw new Error(`${where}: Inference-Header-Content-Length ${n} of a ${body.length}-byte body`);
    jsonText = body.subarray(0, n).toString('utf8');
    if (!res.content['application/json']) throw new Error(`${where}: no JSON schema for the header`);
    return validateJson(where, jsonText, [...resPtr, 'content', 'application/json', 'schema']);
  }
  if (jsonText === null) return; // files, Prometheus text: their type was checked
  return validateJson(where, jsonText, [...resPtr, 'content', key, 'schema']);
}

function validateJson(where, text, ptrParts) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: the body is not JSON (${e.message}): ${text.slice(0, 200)}`);
  }
  const v = schemaValidator(`/${pointer(ptrParts)}`);
  if (!v(value))
    throw new Error(`${where}: the answer does not match server/openapi.json: ${ajv.errorsText(v.errors)}\n${text.slice(0, 300)}`);
}
