// Check macros for MPI and NCCL calls: file:line and the library's error text, then exit.
// Include after <mpi.h> and/or <nccl.h>.
#pragma once
#include <stdio.h>
#include <stdlib.h>

#ifdef MPI_SUCCESS
static inline void mpi_check(int err, const char* file, int line) {
    if (err != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(err, msg, &len);
        fprintf(stderr, "error: %s:%d: MPI: %.*s\n", file, line, len, msg);
        exit(1);
    }
}
#define mpiCheck(err) mpi_check((err), __FILE__, __LINE__)
#endif

#ifdef NCCL_MAJOR
static inline void nccl_check(ncclResult_t err, const char* file, int line) {
    if (err != ncclSuccess) {
        fprintf(stderr, "error: %s:%d: NCCL: %s\n", file, line, ncclGetErrorString(err));
        exit(1);
    }
}
#define ncclCheck(err) nccl_check((err), __FILE__, __LINE__)
#endif
