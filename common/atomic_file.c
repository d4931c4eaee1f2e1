#include "common/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/check.h"

static char* dir_of(const char* path) {
    const char* slash = strrchr(path, '/');
    if (!slash) return strdupCheck(".");
    if (slash == path) return strdupCheck("/");
    size_t n = (size_t)(slash - path);
    char* d = mallocCheck(n + 1);
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

AtomicFile atomic_file_open(const char* path) {
    AtomicFile af;
    af.path = strdupCheck(path);
    char* dir = dir_of(path);
    const char* slash = strrchr(path, '/');
    const char* name = slash ? slash + 1 : path;
    size_t n = strlen(dir) + strlen(name) + 16;
    af.tmp_path = mallocCheck(n);
    snprintf(af.tmp_path, n, "%s/.%s.tmp.XXXXXX", dir, name);
    free(dir);
    int fd = mkstemp(af.tmp_path);
    if (fd < 0) FATAL("cannot create a temporary file for '%s': %s", path, strerror(errno));
    af.f = fdopen(fd, "wb");
    if (!af.f) FATAL("fdopen for '%s' failed: %s", path, strerror(errno));
    return af;
}

static void fsync_dir(const char* path) {
    char* dir = dir_of(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);  // best effort: some filesystems refuse fsync on directories
        close(fd);
    }
    free(dir);
}

void atomic_file_commit(AtomicFile* af) {
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0) {
        int err = errno;
        atomic_file_abort(af);
        FATAL("writing '%s' failed: %s", af->path, strerror(err));
    }
    fclose(af->f);
    af->f = NULL;
    if (rename(af->tmp_path, af->path) != 0) {
        int err = errno;
        unlink(af->tmp_path);
        FATAL("cannot move the new '%s' into place: %s", af->path, strerror(err));
    }
    fsync_dir(af->path);
    free(af->path);
    free(af->tmp_path);
    af->path = af->tmp_path = NULL;
}

void atomic_file_abort(AtomicFile* af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->tmp_path);
    af->tmp_path = NULL;
}

void atomic_write_file(const char* path, const void* data, size_t len) {
    AtomicFile af = atomic_file_open(path);
    if (len && fwrite(data, 1, len, af.f) != len) {
        atomic_file_abort(&af);
        FATAL("writing '%s' failed: %s", path, strerror(errno));
    }
    atomic_file_commit(&af);
}
