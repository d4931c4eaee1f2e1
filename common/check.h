// Checked wrappers for the C library and the CUDA/NCCL/MPI runtimes.
// Every failure prints file:line and a message naming what failed, then exits 1.
#pragma once
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// Print "error: <file>:<line>: <message>" to stderr and exit(1).
__attribute__((noreturn, format(printf, 3, 4)))
void fatal_at(const char* file, int line, const char* fmt, ...);
#define FATAL(...) fatal_at(__FILE__, __LINE__, __VA_ARGS__)

void* malloc_check(size_t size, const char* file, int line);
void* calloc_check(size_t n, size_t size, const char* file, int line);
void* realloc_check(void* p, size_t size, const char* file, int line);
char* strdup_check(const char* s, const char* file, int line);
FILE* fopen_check(const char* path, const char* mode, const char* file, int line);
// fread/fwrite that fail on short counts: the message names `path` (the file being read).
void fread_check(void* ptr, size_t size, size_t n, FILE* f, const char* path, const char* file, int line);
void fwrite_check(const void* ptr, size_t size, size_t n, FILE* f, const char* path, const char* file, int line);
void fclose_check(FILE* f, const char* path, const char* file, int line);

#define mallocCheck(size) malloc_check(size, __FILE__, __LINE__)
#define callocCheck(n, size) calloc_check(n, size, __FILE__, __LINE__)
#define reallocCheck(p, size) realloc_check(p, size, __FILE__, __LINE__)
#define strdupCheck(s) strdup_check(s, __FILE__, __LINE__)
#define fopenCheck(path, mode) fopen_check(path, mode, __FILE__, __LINE__)
#define freadCheck(ptr, size, n, f, path) fread_check(ptr, size, n, f, path, __FILE__, __LINE__)
#define fwriteCheck(ptr, size, n, f, path) fwrite_check(ptr, size, n, f, path, __FILE__, __LINE__)
#define fcloseCheck(f, path) fclose_check(f, path, __FILE__, __LINE__)

// Whole file into a NUL-terminated buffer (caller frees); *len_out gets the byte count.
char* read_file_check(const char* path, size_t* len_out, const char* file, int line);
#define readFileCheck(path, len_out) read_file_check(path, len_out, __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif
