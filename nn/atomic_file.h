/*
 * atomic_file.h - private to libnn: the regular-file check its loaders share (the atomic
 * writer itself, nn_atomic_write, is public in nn.h).
 *
 * Used by the model file writer and the training reports, so that a crash, a full disk or a
 * reader that opens the file mid-write never sees half a file. Never include from server/.
 */
#ifndef NN_ATOMIC_FILE_H
#define NN_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/* nn_atomic_write is declared in nn.h (the programs' reports use it too). */

/*
 * NN_OK if st (of path) is a regular file; else NN_EIO with "path: not a regular file (a
 * FIFO)", or "path: opening: Is a directory" for a directory. For loaders that open a file
 * themselves (nn_read_file, the IDX reader); nn_read_file is declared in nn.h.
 */
int nn_file_check_regular(const char *path, const struct stat *st, char *err, size_t errlen);

#endif
