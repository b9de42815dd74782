/*
 * atomic_file.c - write-to-temp, fsync, rename, fsync-directory.
 *
 * The classic recipe for replacing a file so that readers see either the old or the new
 * contents, never a mix, and a crash leaves no torn file: rename(2) within one directory is
 * atomic (POSIX.1-2008, rename), and the fsyncs make the data and then the name durable.
 */
#include "atomic_file.h"

#include "nn_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fills err with "path: what: strerror(e)" and returns NN_EIO. strerror_r (XSI form, which
 * _POSIX_C_SOURCE selects) because strerror may use a shared buffer. */
static int io_error(char *err, size_t errlen, const char *path, const char *what, int e)
{
    char msg[128];
    if (strerror_r(e, msg, sizeof msg) != 0)
        snprintf(msg, sizeof msg, "error %d", e);
    return nn_seterr(err, errlen, NN_EIO, "%s: %s: %s", path, what, msg);
}

static int write_all(int fd, const unsigned char *p, size_t size)
{
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) { /* should not happen for regular files; avoid spinning */
            errno = EIO;
            return -1;
        }
        p += w;
        size -= (size_t)w;
    }
    return 0;
}

/* fsync of the directory holding path, so that the rename survives a crash. */
static int sync_dir(const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    int fd = -1, status = NN_OK;

    if (!slash) {
        dir = strdup(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/name" -> "/" */
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir)
        return nn_seterr(err, errlen, NN_ENOMEM, "%s: out of memory", path);

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        status = io_error(err, errlen, path, "opening directory to sync", errno);
        goto fail;
    }
    if (fsync(fd) != 0 && errno != EINVAL) {
        status = io_error(err, errlen, path, "syncing directory", errno);
        goto fail;
    }
fail:
    if (fd >= 0)
        close(fd);
    free(dir);
    return status;
}

/* "a FIFO", "a directory", ... for the message that refuses a file that is not regular. */
static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "of an unknown kind";
}

int nn_atomic_write(const char *path, const void *data, size_t size, char *err, size_t errlen)
{
    static const char suffix[] = ".tmp.XXXXXX";
    char *tmp = NULL;
    int fd = -1, status = NN_OK;
    size_t plen;

    if (!path || !*path)
        return nn_seterr(err, errlen, NN_EINVAL, "atomic write: empty path");
    if (!data && size > 0)
        return nn_seterr(err, errlen, NN_EINVAL, "%s: no data to write", path);

    /* rename(2) would replace a device or a FIFO by a regular file (as root, /dev/null too),
     * and fails on a directory only after the whole file is written: refuse both first. A
     * symbolic link is replaced by the new file, as before. */
    {
        struct stat st;
        if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode) && !S_ISREG(st.st_mode))
            return nn_seterr(err, errlen, NN_EIO, "%s: not a regular file (%s), not replacing it",
                             path, file_kind(st.st_mode));
    }
    plen = strlen(path);
    tmp = malloc(plen + sizeof suffix);
    if (!tmp)
        return nn_seterr(err, errlen, NN_ENOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    fd = mkstemp(tmp);
    if (fd < 0) {
        status = io_error(err, errlen, path, "creating temporary file", errno);
        free(tmp);
        return status;
    }
    /* mkstemp gives 0600 and no close-on-exec; a model or report is meant to be shared. */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (fchmod(fd, 0644) != 0) {
        status = io_error(err, errlen, path, "setting mode of temporary file", errno);
        goto fail;
    }
    if (write_all(fd, data, size) != 0) {
        status = io_error(err, errlen, path, "writing temporary file", errno);
        goto fail;
    }
    if (fsync(fd) != 0) {
        status = io_error(err, errlen, path, "syncing temporary file", errno);
        goto fail;
    }
    {
        int rc = close(fd);
        fd = -1;
        if (rc != 0) {
            status = io_error(err, errlen, path, "closing temporary file", errno);
            goto fail;
        }
    }
    if (rename(tmp, path) != 0) {
        status = io_error(err, errlen, path, "renaming temporary file into place", errno);
        goto fail;
    }
    free(tmp);
    return sync_dir(path, err, errlen);

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return status;
}

int nn_file_check_regular(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (S_ISREG(st->st_mode))
        return NN_OK;
    if (S_ISDIR(st->st_mode)) /* the message callers have always given a directory */
        return io_error(err, errlen, path, "opening", EISDIR);
    return nn_seterr(err, errlen, NN_EIO, "%s: not a regular file (%s)", path,
                     file_kind(st->st_mode));
}

/*
 * Reads a whole regular file of at most max_size bytes into a malloc'd buffer. O_NONBLOCK so
 * that opening a FIFO returns at once (it is then refused, never read): a blocking open would
 * wait for a writer, holding up the caller (the server's reload, and with it SIGTERM). Only
 * regular files are read, and at most the size fstat gives, so a device such as /dev/zero
 * costs nothing and a file that grows while it is read cannot make us read more.
 */
int nn_read_file(const char *path, size_t max_size, void **data_out, size_t *size, char *err,
                 size_t errlen)
{
    unsigned char *buf = NULL;
    size_t want, len = 0;
    struct stat st;
    int fd, rc = NN_OK;

    *data_out = NULL, *size = 0;
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return io_error(err, errlen, path, "opening", errno);
    if (fstat(fd, &st) != 0) {
        rc = io_error(err, errlen, path, "stat", errno);
        goto fail;
    }
    if ((rc = nn_file_check_regular(path, &st, err, errlen)))
        goto fail;
    if (st.st_size < 0 || (uintmax_t)st.st_size > max_size) {
        rc = nn_seterr(err, errlen, NN_ERANGE, "%s: %jd bytes is too big (at most %zu)", path,
                       (intmax_t)st.st_size, max_size);
        goto fail;
    }
    want = (size_t)st.st_size;
    buf = malloc(want + 1); /* + 1: a NUL after the data, for text files */
    if (!buf) {
        rc = nn_seterr(err, errlen, NN_ENOMEM, "%s: out of memory for %zu bytes", path, want);
        goto fail;
    }
    while (len < want) {
        ssize_t got = read(fd, buf + len, want - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = io_error(err, errlen, path, "reading", errno);
            goto fail;
        }
        if (got == 0) /* the file shrank since fstat: the caller sees it as truncated */
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
    close(fd);
    *data_out = buf, *size = len;
    return NN_OK;

fail:
    close(fd);
    free(buf);
    return rc;
}
