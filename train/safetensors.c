#include "train/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/check.h"

// ---------------------------------------------------------------- CRC-32 (IEEE, as zlib), slicing by 8
static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++) crc_table[s][i] = (crc_table[s - 1][i] >> 8) ^ crc_table[0][crc_table[s - 1][i] & 0xFF];
    crc_ready = 1;
}

uint32_t crc32_update(uint32_t crc, const void* data, size_t n) {
    if (!crc_ready) crc_init();
    const unsigned char* p = data;
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
              crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
              crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

// ---------------------------------------------------------------- dtypes
static const struct { const char* name; StDType dtype; size_t size; } dtypes[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"I32", ST_I32, 4}, {"I64", ST_I64, 8},
};

size_t st_dtype_size(StDType t) { return dtypes[t].size; }

int64_t st_numel(const StTensor* t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0x1F) bits = sign | 0x7F800000u | (mant << 13);
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) bits = sign;
    else {  // subnormal half: normalise
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void safetensors_to_f32(const SafeTensors* st, const StTensor* t, float* out) {
    const unsigned char* src = st->data + t->offset;
    int64_t n = st_numel(t);
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
            case ST_F32: memcpy(&out[i], src + 4 * i, 4); break;
            case ST_F16: { uint16_t h; memcpy(&h, src + 2 * i, 2); out[i] = half_to_float(h); break; }
            case ST_BF16: { uint16_t h; memcpy(&h, src + 2 * i, 2); uint32_t b = (uint32_t)h << 16; memcpy(&out[i], &b, 4); break; }
            case ST_I32: { int32_t v; memcpy(&v, src + 4 * i, 4); out[i] = (float)v; break; }
            case ST_I64: { int64_t v; memcpy(&v, src + 8 * i, 8); out[i] = (float)v; break; }
        }
    }
}

// ---------------------------------------------------------------- reading
__attribute__((format(printf, 3, 4)))
static int fail(char* err, size_t err_size, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return -1;
}

static int cmp_offset(const void* a, const void* b) {
    const StTensor* x = *(const StTensor* const*)a;
    const StTensor* y = *(const StTensor* const*)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int parse_header(SafeTensors* st, const char* header, char* err, size_t err_size) {
    const char* path = st->path;
    cJSON* root = cJSON_Parse(header);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(err, err_size, "%s: the safetensors header is not a JSON object (corrupt file?)", path);
    }
    int n = cJSON_GetArraySize(root);
    st->tensors = callocCheck((size_t)n, sizeof(StTensor));
    st->meta_keys = callocCheck((size_t)n + 1, sizeof(char*));
    st->meta_values = callocCheck((size_t)n + 1, sizeof(char*));
    int rc = 0;
    for (cJSON* item = root->child; item && rc == 0; item = item->next) {
        if (!strcmp(item->string, "__metadata__")) {
            for (cJSON* m = item->child; m; m = m->next) {
                if (!cJSON_IsString(m)) { rc = fail(err, err_size, "%s: __metadata__.%s: expected a string", path, m->string); break; }
                st->meta_keys = reallocCheck(st->meta_keys, (size_t)(st->n_meta + 1) * sizeof(char*));
                st->meta_values = reallocCheck(st->meta_values, (size_t)(st->n_meta + 1) * sizeof(char*));
                st->meta_keys[st->n_meta] = strdupCheck(m->string);
                st->meta_values[st->n_meta] = strdupCheck(m->valuestring);
                st->n_meta++;
            }
            continue;
        }
        StTensor* t = &st->tensors[st->n_tensors];
        t->name = strdupCheck(item->string);
        st->n_tensors++;
        cJSON* dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
        cJSON* shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
        cJSON* offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2) {
            rc = fail(err, err_size, "%s: tensor '%s': needs dtype, shape and data_offsets [begin, end]", path, t->name);
            break;
        }
        size_t d = 0;
        while (d < sizeof dtypes / sizeof *dtypes && strcmp(dtypes[d].name, dtype->valuestring)) d++;
        if (d == sizeof dtypes / sizeof *dtypes) {
            rc = fail(err, err_size, "%s: tensor '%s': unsupported dtype %s", path, t->name, dtype->valuestring);
            break;
        }
        t->dtype = dtypes[d].dtype;
        t->ndim = cJSON_GetArraySize(shape);
        if (t->ndim > 8) { rc = fail(err, err_size, "%s: tensor '%s': more than 8 dimensions", path, t->name); break; }
        for (int i = 0; i < t->ndim; i++) {
            cJSON* s = cJSON_GetArrayItem(shape, i);
            if (!cJSON_IsNumber(s) || s->valuedouble < 0) { rc = fail(err, err_size, "%s: tensor '%s': bad shape", path, t->name); break; }
            t->shape[i] = (int64_t)s->valuedouble;
        }
        if (rc) break;
        double begin = cJSON_GetArrayItem(offs, 0)->valuedouble, end = cJSON_GetArrayItem(offs, 1)->valuedouble;
        if (begin < 0 || end < begin || end > (double)st->data_size) {
            rc = fail(err, err_size, "%s: tensor '%s': data_offsets [%.0f, %.0f] outside the %zu-byte data section (truncated file?)",
                      path, t->name, begin, end, st->data_size);
            break;
        }
        t->offset = (size_t)begin;
        t->nbytes = (size_t)(end - begin);
        if ((size_t)st_numel(t) * st_dtype_size(t->dtype) != t->nbytes) {
            rc = fail(err, err_size, "%s: tensor '%s': %zu bytes do not hold its shape", path, t->name, t->nbytes);
            break;
        }
    }
    cJSON_Delete(root);
    if (rc) return rc;
    // Ranges must not overlap.
    StTensor** order = mallocCheck((size_t)st->n_tensors * sizeof(StTensor*) + 1);
    for (int i = 0; i < st->n_tensors; i++) order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n_tensors, sizeof(StTensor*), cmp_offset);
    for (int i = 1; i < st->n_tensors && rc == 0; i++)
        if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
            rc = fail(err, err_size, "%s: tensors '%s' and '%s' overlap", path, order[i - 1]->name, order[i]->name);
    free(order);
    return rc;
}

int safetensors_read(const char* path, SafeTensors* st, char* err, size_t err_size) {
    memset(st, 0, sizeof *st);
    st->path = strdupCheck(path);
    FILE* f = fopen(path, "rb");
    if (!f) return fail(err, err_size, "%s: cannot open: %s", path, strerror(errno));
    unsigned char len_bytes[8];
    int rc = 0;
    if (fseek(f, 0, SEEK_END) != 0) rc = fail(err, err_size, "%s: cannot seek", path);
    long file_size = rc ? 0 : ftell(f);
    rewind(f);
    uint64_t header_len = 0;
    if (!rc && fread(len_bytes, 1, 8, f) != 8) rc = fail(err, err_size, "%s: shorter than a safetensors header (truncated?)", path);
    if (!rc) {
        for (int i = 7; i >= 0; i--) header_len = header_len << 8 | len_bytes[i];
        if (header_len > 100000000ull || 8 + header_len > (uint64_t)file_size)
            rc = fail(err, err_size, "%s: header size %llu does not fit the %ld-byte file (truncated or not safetensors)",
                      path, (unsigned long long)header_len, file_size);
    }
    char* header = NULL;
    if (!rc) {
        header = mallocCheck(header_len + 1);
        if (fread(header, 1, header_len, f) != header_len) rc = fail(err, err_size, "%s: truncated header", path);
        header[header_len] = '\0';
    }
    if (!rc) {
        st->data_size = (size_t)file_size - 8 - header_len;
        st->data = mallocCheck(st->data_size);
        if (fread(st->data, 1, st->data_size, f) != st->data_size) rc = fail(err, err_size, "%s: read error", path);
    }
    fclose(f);
    if (!rc) rc = parse_header(st, header, err, err_size);
    free(header);
    const char* want = rc ? NULL : safetensors_meta(st, "tipcap_crc32");
    if (want) {
        char got[16];
        snprintf(got, sizeof got, "%08x", crc32_update(0, st->data, st->data_size));
        if (strcmp(got, want))
            rc = fail(err, err_size, "%s: checksum mismatch (stored %s, computed %s): the file is corrupt or truncated",
                      path, want, got);
    }
    if (rc) {
        char* keep = strdupCheck(err);  // free() below must not lose the message
        safetensors_free(st);
        snprintf(err, err_size, "%s", keep);
        free(keep);
    }
    return rc;
}

void safetensors_free(SafeTensors* st) {
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->data);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const StTensor* safetensors_find(const SafeTensors* st, const char* name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

const char* safetensors_meta(const SafeTensors* st, const char* key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

// ---------------------------------------------------------------- writing
typedef struct {
    char* name;
    StDType dtype;
    int ndim;
    int64_t shape[8];
    const void* data;
    size_t nbytes;
} PendingTensor;

struct SafeTensorsWriter {
    int n, cap;
    PendingTensor* tensors;
    cJSON* meta;
};

SafeTensorsWriter* safetensors_writer_new(void) {
    SafeTensorsWriter* w = callocCheck(1, sizeof *w);
    w->meta = cJSON_CreateObject();
    return w;
}

void safetensors_writer_add(SafeTensorsWriter* w, const char* name, StDType dtype, int ndim, const int64_t* shape,
                            const void* data) {
    if (ndim > 8) FATAL("safetensors: tensor '%s' has more than 8 dimensions", name);
    if (w->n == w->cap) w->tensors = reallocCheck(w->tensors, (size_t)(w->cap = w->cap ? 2 * w->cap : 64) * sizeof(PendingTensor));
    PendingTensor* t = &w->tensors[w->n++];
    t->name = strdupCheck(name);
    t->dtype = dtype;
    t->ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)(t->shape[i] = shape[i]);
    t->data = data;
    t->nbytes = numel * st_dtype_size(dtype);
}

void safetensors_writer_meta(SafeTensorsWriter* w, const char* key, const char* value) {
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    cJSON_AddStringToObject(w->meta, key, value);
}

int safetensors_writer_write(SafeTensorsWriter* w, const char* path, char* err, size_t err_size) {
    uint32_t crc = 0;
    cJSON* header = cJSON_CreateObject();
    size_t offset = 0;
    for (int i = 0; i < w->n; i++) {
        PendingTensor* t = &w->tensors[i];
        cJSON* entry = cJSON_AddObjectToObject(header, t->name);
        cJSON_AddStringToObject(entry, "dtype", dtypes[t->dtype].name);
        cJSON* shape = cJSON_AddArrayToObject(entry, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON* offs = cJSON_AddArrayToObject(entry, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + t->nbytes)));
        offset += t->nbytes;
        crc = crc32_update(crc, t->data, t->nbytes);
    }
    char crc_text[16];
    snprintf(crc_text, sizeof crc_text, "%08x", crc);
    safetensors_writer_meta(w, "tipcap_crc32", crc_text);
    cJSON_AddItemReferenceToObject(header, "__metadata__", w->meta);
    char* text = cJSON_PrintUnformatted(header);
    cJSON_Delete(header);
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7;  // data section 8-byte aligned, padding with spaces as the format allows
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    AtomicFile af = atomic_file_open(path);
    int ok = fwrite(len_bytes, 1, 8, af.f) == 8 && fwrite(text, 1, len, af.f) == len;
    for (size_t i = len; ok && i < padded; i++) ok = fputc(' ', af.f) != EOF;
    for (int i = 0; ok && i < w->n; i++) ok = fwrite(w->tensors[i].data, 1, w->tensors[i].nbytes, af.f) == w->tensors[i].nbytes;
    free(text);
    if (!ok) {
        atomic_file_abort(&af);
        return fail(err, err_size, "%s: write failed: %s", path, strerror(errno));
    }
    atomic_file_commit(&af);
    return 0;
}

void safetensors_writer_free(SafeTensorsWriter* w) {
    for (int i = 0; i < w->n; i++) free(w->tensors[i].name);
    free(w->tensors);
    cJSON_Delete(w->meta);
    free(w);
}
