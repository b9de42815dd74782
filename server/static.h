/*
 * static.h - files of the web page, served only from the --web directory.
 *
 * A URL path is accepted only if, after percent-decoding, it is absolute, has no "." or ".."
 * segment, no empty segment, no backslash, no segment starting with a dot, and the file it
 * names, with every symlink resolved (realpath), is a regular file inside the real web root.
 * Everything else is "not found", so a probe learns nothing about the rest of the disk.
 */
#ifndef SRV_STATIC_H
#define SRV_STATIC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct srv_static;

struct srv_static_file {
    int fd; /* open for reading; the caller closes it */
    uint64_t size;
    int64_t mtime;    /* seconds */
    const char *mime; /* static string */
    char etag[48];    /* "size-mtime_ns" in quotes */
};

/* Resolves dir with realpath and checks it is a directory. err: "web: No such file...". */
int srv_static_new(struct srv_static **out, const char *dir, char *err, size_t errlen);
void srv_static_free(struct srv_static *st);

/* Opens the file that the decoded URL path names ("/" and ".../" mean index.html).
 * Returns 0 and fills *f, or -1 when there is no such file that may be served. Thread-safe. */
int srv_static_open(const struct srv_static *st, const char *url_path, struct srv_static_file *f);

/* MIME type from the file name's extension ("text/html; charset=utf-8", ...,
 * "application/octet-stream" when unknown). */
const char *srv_mime_type(const char *path);

/* Checks a decoded URL path against the rules above without touching the disk (for tests):
 * 1 if acceptable, 0 if not. */
int srv_static_path_ok(const char *url_path);

#endif
