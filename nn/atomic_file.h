/*
 * atomic_file.h - private to libnn: replace a file all at once or not at all.
 *
 * Used by the model file writer and the training reports, so that a crash, a full disk or a
 * reader that opens the file mid-write never sees half a file. Never include from server/.
 */
#ifndef NN_ATOMIC_FILE_H
#define NN_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * Writes data[0..size) to path atomically: a temporary file "<path>.tmp.XXXXXX" is created in
 * the same directory (so the rename stays on one file system), written in full, fsync'd,
 * closed and renamed over path; then the directory is fsync'd so the rename itself is durable.
 * The new file gets mode 0644.
 *
 * Returns NN_OK, NN_EINVAL (path NULL or empty, data NULL with size > 0), NN_ENOMEM, or NN_EIO
 * with "path: what failed: strerror(errno)" in err (err may be NULL). An existing path that
 * is a directory, a device, a FIFO or a socket is refused (NN_EIO, "path: not a regular file
 * (a FIFO), not replacing it") before anything is written; a symbolic link is replaced.
 * On any failure before the rename the temporary file is removed and an existing file at path
 * is untouched. If only the final directory fsync fails (after the rename), NN_EIO is
 * returned but the new contents are already in place; file systems that do not support
 * fsync on a directory (EINVAL) are not treated as failing.
 *
 * Thread-safe: no shared state; concurrent writers to the same path each leave a complete file
 * (the last rename wins).
 */
int nn_atomic_write(const char *path, const void *data, size_t size, char *err, size_t errlen);

/*
 * NN_OK if st (of path) is a regular file; else NN_EIO with "path: not a regular file (a
 * FIFO)", or "path: opening: Is a directory" for a directory. For loaders that open a file
 * themselves (nn_read_file, the IDX reader); nn_read_file is declared in nn.h.
 */
int nn_file_check_regular(const char *path, const struct stat *st, char *err, size_t errlen);

#endif
