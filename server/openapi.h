/*
 * openapi.h - server/openapi.json, the OpenAPI 3.1 description of every route, built into the
 * binary (served at GET /openapi.json, so a client always gets the document of the server it
 * talks to). tests/server/openapi.mjs checks every answer of the HTTP tests against it.
 */
#ifndef SRV_OPENAPI_H
#define SRV_OPENAPI_H

#include <stddef.h>

/* The document's bytes (not NUL-terminated) and their number. */
const char *srv_openapi_json(size_t *len);

#endif
