/*
 * openapi.c - server/openapi.json embedded with the assembler's .incbin (see openapi.h): no
 * generated source, no tool beyond the compiler, and the Makefile rebuilds this object when
 * the document changes. The path is relative to the repository root, where make runs.
 */
#include "openapi.h"

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl srv_openapi_begin, srv_openapi_end\n"
        ".hidden srv_openapi_begin, srv_openapi_end\n"
        "srv_openapi_begin:\n"
        ".incbin \"server/openapi.json\"\n"
        "srv_openapi_end:\n"
        ".byte 0\n"
        ".previous\n");

extern const char srv_openapi_begin[] __attribute__((visibility("hidden")));
extern const char srv_openapi_end[] __attribute__((visibility("hidden")));

const char *srv_openapi_json(size_t *len)
{
    *len = (size_t)(srv_openapi_end - srv_openapi_begin);
    return srv_openapi_begin;
}
