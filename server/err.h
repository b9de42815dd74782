/* err.h - the server's one helper for filling a caller's error buffer. */
#ifndef SRV_ERR_H
#define SRV_ERR_H

#include <stddef.h>

/* vsnprintf into err when err is not NULL; returns status so `return srv_seterr(...)` reads
 * well. */
int srv_seterr(char *err, size_t errlen, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#endif
