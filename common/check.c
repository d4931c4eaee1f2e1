#include "common/check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void fatal_at(const char* file, int line, const char* fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "error: %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void* malloc_check(size_t size, const char* file, int line) {
    void* p = malloc(size ? size : 1);
    if (!p) fatal_at(file, line, "out of memory allocating %zu bytes", size);
    return p;
}

void* calloc_check(size_t n, size_t size, const char* file, int line) {
    void* p = calloc(n ? n : 1, size ? size : 1);
    if (!p) fatal_at(file, line, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void* realloc_check(void* p, size_t size, const char* file, int line) {
    void* q = realloc(p, size ? size : 1);
    if (!q) fatal_at(file, line, "out of memory reallocating to %zu bytes", size);
    return q;
}

char* strdup_check(const char* s, const char* file, int line) {
    size_t n = strlen(s) + 1;
    char* p = malloc_check(n, file, line);
    memcpy(p, s, n);
    return p;
}

FILE* fopen_check(const char* path, const char* mode, const char* file, int line) {
    FILE* f = fopen(path, mode);
    if (!f) fatal_at(file, line, "cannot open '%s' (mode %s): %s", path, mode, strerror(errno));
    return f;
}

void fread_check(void* ptr, size_t size, size_t n, FILE* f, const char* path, const char* file, int line) {
    size_t got = fread(ptr, size, n, f);
    if (got != n) {
        if (feof(f)) fatal_at(file, line, "'%s': unexpected end of file (read %zu of %zu items of %zu bytes)", path, got, n, size);
        fatal_at(file, line, "'%s': read error: %s", path, strerror(errno));
    }
}

void fwrite_check(const void* ptr, size_t size, size_t n, FILE* f, const char* path, const char* file, int line) {
    if (fwrite(ptr, size, n, f) != n) fatal_at(file, line, "'%s': write error: %s", path, strerror(errno));
}

void fclose_check(FILE* f, const char* path, const char* file, int line) {
    if (fclose(f) != 0) fatal_at(file, line, "'%s': close failed: %s", path, strerror(errno));
}

char* read_file_check(const char* path, size_t* len_out, const char* file, int line) {
    FILE* f = fopen_check(path, "rb", file, line);
    size_t cap = 1 << 16, len = 0;
    char* buf = malloc_check(cap, file, line);
    for (;;) {
        if (len + 1 >= cap) buf = realloc_check(buf, cap *= 2, file, line);
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) fatal_at(file, line, "'%s': read error: %s", path, strerror(errno));
    fclose(f);
    buf[len] = '\0';
    if (len_out) *len_out = len;
    return buf;
}
