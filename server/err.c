/* err.c - see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int srv_seterr(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}
