/* status.c - status codes to text, and the err-buffer helper every loader uses. */
#include "nn_impl.h"

#include <stdarg.h>
#include <stdio.h>

const char *nn_strerror(int status)
{
    switch (status) {
    case NN_OK: return "success";
    case NN_EINVAL: return "invalid argument";
    case NN_ENOMEM: return "out of memory";
    case NN_EIO: return "input/output error";
    case NN_EFORMAT: return "malformed data";
    case NN_EVERSION: return "unsupported format version";
    case NN_ECHECKSUM: return "checksum mismatch";
    case NN_ERANGE: return "value out of range";
    case NN_EBLANK: return "no ink in image";
    case NN_EINTR: return "interrupted";
    default: return "unknown error";
    }
}

int nn_seterr(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}
