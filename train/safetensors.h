// safetensors files (https://github.com/huggingface/safetensors), read and written in C:
//   [u64 little-endian header size N][N bytes of JSON header][raw tensor data]
//   header: {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
//            "__metadata__": {"key": "string value", ...}}
// Offsets are relative to the start of the data section. tipcap adds the metadata key
// "tipcap_crc32" (CRC-32 of the data section, 8 hex digits) to every file it writes and checks it
// on reading when present, so a truncated or corrupted checkpoint is a clear error.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ST_F32, ST_F16, ST_BF16, ST_I32, ST_I64 } StDType;

typedef struct {
    char* name;
    StDType dtype;
    int ndim;
    int64_t shape[8];
    size_t offset;  // into the data section
    size_t nbytes;
} StTensor;

typedef struct {
    char* path;
    int n_tensors;
    StTensor* tensors;
    int n_meta;
    char** meta_keys;
    char** meta_values;
    unsigned char* data;  // the data section (owned)
    size_t data_size;
} SafeTensors;

// Reads and validates the whole file: header JSON, dtypes, shapes against byte ranges, ranges
// inside the file and not overlapping, and the tipcap_crc32 checksum if present.
// Returns 0, or -1 with a message naming the file (and tensor) in err.
int safetensors_read(const char* path, SafeTensors* st, char* err, size_t err_size);
void safetensors_free(SafeTensors* st);
const StTensor* safetensors_find(const SafeTensors* st, const char* name);
const char* safetensors_meta(const SafeTensors* st, const char* key);  // NULL if absent
// Copies tensor `t` into out as fp32 (converting F16/BF16); n_elements must match.
void safetensors_to_f32(const SafeTensors* st, const StTensor* t, float* out);
size_t st_dtype_size(StDType t);
int64_t st_numel(const StTensor* t);

// Writing: collect tensors (data is referenced, not copied, until write), then write atomically.
typedef struct SafeTensorsWriter SafeTensorsWriter;
SafeTensorsWriter* safetensors_writer_new(void);
void safetensors_writer_add(SafeTensorsWriter* w, const char* name, StDType dtype, int ndim, const int64_t* shape,
                            const void* data);
void safetensors_writer_meta(SafeTensorsWriter* w, const char* key, const char* value);
// Writes to `path` through a temporary + rename; returns 0 or -1 with err.
int safetensors_writer_write(SafeTensorsWriter* w, const char* path, char* err, size_t err_size);
void safetensors_writer_free(SafeTensorsWriter* w);

uint32_t crc32_update(uint32_t crc, const void* data, size_t n);

#ifdef __cplusplus
}
#endif
