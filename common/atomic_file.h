// Atomic file creation: write to a temporary file beside the target, then fsync, rename over
// the target and fsync the directory. A crash leaves either the old file or the new one,
// never a half-written one. atomic_file_abort() removes the temporary and leaves the target.
#pragma once
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    FILE* f;              // write through this
    char* path;           // final path
    char* tmp_path;       // "<dir>/.<name>.tmp.XXXXXX"
} AtomicFile;

// Opens the temporary; exits with a clear error if the directory is not writable.
AtomicFile atomic_file_open(const char* path);
// Flushes, fsyncs, renames into place. Exits with a clear error on failure (the target is untouched).
void atomic_file_commit(AtomicFile* af);
void atomic_file_abort(AtomicFile* af);
// Whole buffer to `path` atomically.
void atomic_write_file(const char* path, const void* data, size_t len);

#ifdef __cplusplus
}
#endif
