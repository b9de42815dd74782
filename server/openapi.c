/*
 * openapi.c - server/openapi.json embedded with the assembler's .incbin (see openapi.h): no
 * generated source, no tool beyond the compiler, and the Makefile rebuilds this object when
 * the document changes. The path is relative to the repository root, where make runs. The
 * assembler also writes the length, so C never subtracts pointers to different objects.
 */
#include "openapi.h"

#include <stdint.h>

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl srv_openapi_bytes, srv_openapi_len\n"
        ".hidden srv_openapi_bytes, srv_openapi_len\n"
        "srv_openapi_bytes:\n"
        ".incbin \"server/openapi.json\"\n"
        "srv_openapi_end:\n"
        ".byte 0\n"
        ".balign 8\n"
        "srv_openapi_len:\n"
        ".quad srv_openapi_end - srv_openapi_bytes\n"
        ".previous\n");

extern const char srv_openapi_bytes[] __attribute__((visibility("hidden")));
extern const uint64_t srv_openapi_len __attribute__((visibility("hidden")));

const char *srv_openapi_json(size_t *len)
{
    *len = (size_t)srv_openapi_len;
    return srv_openapi_bytes;
}
