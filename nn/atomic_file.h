/*
 * atomic_file.h - private to libnn: replace a file all at once or not at all.
 *
 * Used by the model file writer and the training reports, so that a crash, a full disk or a
 * reader that opens the file mid-write never sees half a file. Never include from server/.
 */
#ifndef NN_ATOMIC_FILE_H
#define NN_ATOMIC_FILE_H

#include <stddef.h>

/*
 * Writes data[0..size) to path atomically: a temporary file "<path>.tmp.XXXXXX" is created in
 * the same directory (so the rename stays on one file system), written in full, fsync'd,
 * closed and renamed over path; then the directory is fsync'd so the rename itself is durable.
 * The new file gets mode 0644.
 *
 * Returns NN_OK, NN_EINVAL (path NULL or empty, data NULL with size > 0), NN_ENOMEM, or NN_EIO
 * with "path: what failed: strerror(errno)" in err (err may be NULL).
 * On any failure before the rename the temporary file is removed and an existing file at path
 * is untouched. If only the final directory fsync fails (after the rename), NN_EIO is
 * returned but the new contents are already in place; file systems that do not support
 * fsync on a directory (EINVAL) are not treated as failing.
 *
 * Thread-safe: no shared state; concurrent writers to the same path each leave a complete file
 * (the last rename wins).
 */
int nn_atomic_write(const char *path, const void *data, size_t size, char *err, size_t errlen);

/* Reads the whole file at path into *data (malloc'd, freed by the caller) and its length into
 * *size. Refuses directories and files over max_size (NN_ERANGE); system errors are NN_EIO with
 * "path: opening: strerror". */
int nn_read_file(const char *path, size_t max_size, void **data, size_t *size, char *err,
                 size_t errlen);

#endif
