/*
 * static.c - web page files with a containment check (see static.h).
 */
#define _DEFAULT_SOURCE /* realpath */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

struct srv_static {
    char root[PATH_MAX]; /* realpath of the web dir, no trailing slash */
    size_t root_len;
};

int srv_static_new(struct srv_static **out, const char *dir, char *err, size_t errlen)
{
    *out = NULL;
    struct srv_static *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct stat sb;
    if (!realpath(dir, st->root) || stat(st->root, &sb) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        free(st);
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", dir);
        free(st);
        return -1;
    }
    st->root_len = strlen(st->root);
    if (st->root_len == 1) /* "/" */
        st->root_len = 0;
    *out = st;
    return 0;
}

void srv_static_free(struct srv_static *st) { free(st); }

int srv_static_path_ok(const char *p)
{
    if (!p || p[0] != '/' || strlen(p) > 1024)
        return 0;
    if (strchr(p, '\\'))
        return 0;
    /* Segments between slashes; the last may be empty ("/", "/dir/"). */
    for (const char *s = p + 1;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 && e) /* "//" */
            return 0;
        if (n > 0 && s[0] == '.') /* ".", "..", dotfiles */
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return 0;
        if (!e)
            break;
        s = e + 1;
    }
    return 1;
}

static const struct {
    const char *ext, *mime;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"bmp", "image/bmp"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"webmanifest", "application/manifest+json"},
    {"xml", "application/xml"},
};

const char *srv_mime_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot) {
        for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
            if (!strcasecmp(dot + 1, mime_types[i].ext))
                return mime_types[i].mime;
    }
    return "application/octet-stream";
}

int srv_static_open(const struct srv_static *st, const char *url_path, struct srv_static_file *f)
{
    f->fd = -1;
    if (!st || !srv_static_path_ok(url_path))
        return -1;
    char joined[PATH_MAX], real[PATH_MAX];
    size_t n = strlen(url_path);
    const char *index = url_path[n - 1] == '/' ? "index.html" : "";
    int len =
        snprintf(joined, sizeof joined, "%.*s%s%s", (int)st->root_len, st->root, url_path, index);
    if (len < 0 || (size_t)len >= sizeof joined)
        return -1;
    if (!realpath(joined, real))
        return -1;
    /* Inside the root: the root itself followed by '/'. */
    if (strncmp(real, st->root, st->root_len) != 0 || real[st->root_len] != '/')
        return -1;
    /* O_NONBLOCK: opening a FIFO put in the folder would otherwise wait for a writer, holding
     * a worker thread (and a graceful stop) for as long; it is refused below. */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL); /* back to blocking reads for the response's sendfile */
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    f->fd = fd;
    f->size = (uint64_t)sb.st_size;
    f->mtime = (int64_t)sb.st_mtime;
    f->mime = srv_mime_type(real);
    snprintf(f->etag, sizeof f->etag, "\"%llx-%llx\"", (unsigned long long)sb.st_size,
             (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)sb.st_mtim.tv_nsec);
    return 0;
}
