// The HDF5 feature store: reader with validation, atomic writer. See features.h.
#include "data/features.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/check.h"
#include "data/strmap.h"
#include "data/tokenizer.h"

static void set_err(char* err, size_t n, const char* fmt, ...) {
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

// HDF5's own error stack is silenced while we run: our messages name the file and dataset.
typedef struct {
    H5E_auto2_t func;
    void* data;
} QuietHdf5;
static QuietHdf5 hdf5_quiet(void) {
    QuietHdf5 q;
    H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}
static void hdf5_restore(QuietHdf5 q) { H5Eset_auto2(H5E_DEFAULT, q.func, q.data); }

// float16 <-> float32 by hand: HDF5 1.10's own float -> half conversion rounds values just
// below a power of two to the power below (0.2499 -> 0.125), so we never let it convert.
static uint16_t float_to_half(float f) {  // round to nearest even; |f| > 65504 -> inf
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t abs = x & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0));
    if (abs >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // rounds past 65504
    if (abs < 0x38800000u) {                                      // below 2^-14: subnormal half
        if (abs < 0x33000000u) return (uint16_t)sign;             // below half the smallest subnormal
        uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
        int shift = 126 - (int)(abs >> 23);  // half subnormals count units of 2^-24
        uint32_t h = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((abs - 0x38000000u) >> 13);  // rebias the exponent by 127 - 15
    uint32_t rem = abs & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;  // a carry into the exponent is right
    return (uint16_t)(sign | h);
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    uint32_t x;
    if (exp == 0x1F) x = sign | 0x7F800000u | (mant << 13);
    else if (exp != 0) x = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) x = sign;
    else {  // subnormal: normalise
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400u));
        x = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static hid_t float16_type(void) {  // IEEE half, as h5py and numpy store float16
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_precision(t, 16);
    H5Tset_ebias(t, 15);
    return t;
}

// An image key given twice would make results and prompts ambiguous: -1 with the key and both rows
// in err, or 0.
static int check_unique_keys(const char* path, char* const* keys, int n, char* err, size_t err_size) {
    StrMap seen;
    strmap_init(&seen, (size_t)n);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t first = strmap_put(&seen, keys[i], strlen(keys[i]), i);
        if (first != i) {
            set_err(err, err_size, "%s: /images/keys: \"%s\" is in rows %lld and %d (each image once)", path, keys[i],
                    (long long)first, i);
            rc = -1;
        }
    }
    strmap_free(&seen);
    return rc;
}

int features_find_image(const FeatureStore* fs, const char* key) {
    for (int i = 0; i < fs->n_images; i++)
        if (!strcmp(fs->image_keys[i], key)) return i;
    return -1;
}

void features_free(FeatureStore* fs) {
    for (int i = 0; fs->image_keys && i < fs->n_images; i++) free(fs->image_keys[i]);
    for (int i = 0; fs->captions && i < fs->n_texts; i++) free(fs->captions[i]);
    for (int i = 0; fs->vocab_words && i < fs->n_vocab; i++) free(fs->vocab_words[i]);
    free(fs->image_emb);
    free(fs->image_keys);
    free(fs->text_emb);
    free(fs->captions);
    free(fs->image_index);
    free(fs->vocab_words);
    free(fs->vocab_emb);
    free(fs->true_gap_mu);
    free(fs->true_gap_cov);
    free(fs->pair_gap_mu);
    free(fs->pair_gap_cov);
    memset(fs, 0, sizeof *fs);
}

// ---------------------------------------------------------------- reading

typedef struct {
    hid_t file;
    const char* path;
    char* err;
    size_t err_size;
} Reader;

static int link_exists(hid_t loc, const char* name) {
    // H5Lexists fails on "a/b" when "a" is missing, so test each component.
    char buf[256];
    snprintf(buf, sizeof buf, "%s", name);
    for (char* p = buf + 1; ; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
            *p = c;
            if (c == '\0') return 1;
        }
    }
}

// Opens `name`, checks its rank and returns its dimensions in dims; -1 with a message if the
// dataset is missing or has another rank.
static hid_t open_dataset(Reader* r, const char* name, int rank, hsize_t dims[2]) {
    if (!link_exists(r->file, name)) {
        set_err(r->err, r->err_size, "%s: %s: missing dataset", r->path, name);
        return -1;
    }
    hid_t ds = H5Dopen2(r->file, name, H5P_DEFAULT);
    if (ds < 0) {
        set_err(r->err, r->err_size, "%s: %s: not a dataset", r->path, name);
        return -1;
    }
    hid_t sp = H5Dget_space(ds);
    int got = H5Sget_simple_extent_ndims(sp);
    if (got != rank) {
        set_err(r->err, r->err_size, "%s: %s: expected rank %d, got rank %d", r->path, name, rank, got);
        H5Sclose(sp);
        H5Dclose(ds);
        return -1;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    return ds;
}

static const char* describe_type(hid_t t) {
    switch (H5Tget_class(t)) {
        case H5T_INTEGER: return "an integer type";
        case H5T_FLOAT: return H5Tget_size(t) == 8 ? "float64" : H5Tget_size(t) == 2 ? "float16" : "a float type";
        case H5T_STRING: return "strings";
        case H5T_COMPOUND: return "a compound type";
        default: return "another type";
    }
}

// Reads a float32/float16 matrix [rows, cols] (cols = want_cols if > 0) as float32, checking every
// value is finite and (if check_norm) every row has a non-zero norm.
static float* read_floats(Reader* r, const char* name, int rank, int* rows, int* cols, int want_cols, int check_norm) {
    hsize_t dims[2] = {0, 1};
    hid_t ds = open_dataset(r, name, rank, dims);
    if (ds < 0) return NULL;
    hid_t ft = H5Dget_type(ds);
    int ok_type = H5Tget_class(ft) == H5T_FLOAT && (H5Tget_size(ft) == 4 || H5Tget_size(ft) == 2);
    if (!ok_type) {
        set_err(r->err, r->err_size, "%s: %s: expected float32 or float16, got %s", r->path, name, describe_type(ft));
        H5Tclose(ft);
        H5Dclose(ds);
        return NULL;
    }
    H5Tclose(ft);
    if (rank == 1) dims[1] = 1;
    if (want_cols > 0 && (hsize_t)want_cols != (rank == 2 ? dims[1] : dims[0])) {
        if (rank == 2)
            set_err(r->err, r->err_size, "%s: %s: shape [%llu, %llu] does not match D = %d", r->path, name,
                    (unsigned long long)dims[0], (unsigned long long)dims[1], want_cols);
        else
            set_err(r->err, r->err_size, "%s: %s: length %llu does not match D = %d", r->path, name,
                    (unsigned long long)dims[0], want_cols);
        H5Dclose(ds);
        return NULL;
    }
    if (dims[0] > INT32_MAX || dims[1] > INT32_MAX || (rank == 2 && dims[1] == 0)) {
        set_err(r->err, r->err_size, "%s: %s: unsupported shape [%llu, %llu]", r->path, name, (unsigned long long)dims[0],
                (unsigned long long)dims[1]);
        H5Dclose(ds);
        return NULL;
    }
    size_t n = (size_t)dims[0] * (size_t)dims[1];
    float* x = mallocCheck((n ? n : 1) * sizeof(float));
    hid_t ft2 = H5Dget_type(ds);
    int half = H5Tget_size(ft2) == 2;
    H5Tclose(ft2);
    herr_t rc = 0;
    if (n && half) {  // read the raw halves and widen them ourselves
        uint16_t* h = mallocCheck(n * sizeof(uint16_t));
        hid_t mt = float16_type();
        rc = H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, h);
        H5Tclose(mt);
        for (size_t i = 0; i < n; i++) x[i] = half_to_float(h[i]);
        free(h);
    } else if (n) rc = H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    if (rc < 0) {
        set_err(r->err, r->err_size, "%s: %s: read failed", r->path, name);
        free(x);
        H5Dclose(ds);
        return NULL;
    }
    H5Dclose(ds);
    size_t row_len = rank == 2 ? (size_t)dims[1] : 1;
    for (size_t i = 0; i < (size_t)dims[0]; i++) {
        double sq = 0;
        for (size_t j = 0; j < row_len; j++) {
            float v = x[i * row_len + j];
            if (!isfinite(v)) {
                set_err(r->err, r->err_size, "%s: %s: row %zu, column %zu is %s", r->path, name, i, j, isnan(v) ? "NaN" : "infinite");
                free(x);
                return NULL;
            }
            sq += (double)v * v;
        }
        if (check_norm && sq == 0) {
            set_err(r->err, r->err_size, "%s: %s: row %zu has zero norm", r->path, name, i);
            free(x);
            return NULL;
        }
    }
    *rows = (int)dims[0];
    if (cols) *cols = (int)row_len;
    return x;
}

// Reads a rank-1 string dataset (variable- or fixed-length) of valid UTF-8.
static char** read_strings(Reader* r, const char* name, int* count) {
    hsize_t dims[2];
    hid_t ds = open_dataset(r, name, 1, dims);
    if (ds < 0) return NULL;
    hid_t ft = H5Dget_type(ds);
    if (H5Tget_class(ft) != H5T_STRING) {
        set_err(r->err, r->err_size, "%s: %s: expected strings, got %s", r->path, name, describe_type(ft));
        H5Tclose(ft);
        H5Dclose(ds);
        return NULL;
    }
    if (dims[0] > INT32_MAX) {
        set_err(r->err, r->err_size, "%s: %s: too many rows", r->path, name);
        H5Tclose(ft);
        H5Dclose(ds);
        return NULL;
    }
    size_t n = (size_t)dims[0];
    char** out = callocCheck(n ? n : 1, sizeof(char*));
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    int status = 0;
    if (H5Tis_variable_str(ft) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        char** raw = callocCheck(n ? n : 1, sizeof(char*));
        if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) status = -1;
        for (size_t i = 0; i < n; i++) out[i] = strdupCheck(raw[i] ? raw[i] : "");
        if (n && status == 0) {
            hid_t sp = H5Dget_space(ds);
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
            H5Sclose(sp);
        }
        free(raw);
    } else {
        size_t width = H5Tget_size(ft);
        H5Tset_size(mt, width);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        char* raw = callocCheck(n * width + 1, 1);
        if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) status = -1;
        for (size_t i = 0; i < n; i++) out[i] = strndup(raw + i * width, width);
        free(raw);
    }
    H5Tclose(mt);
    H5Tclose(ft);
    H5Dclose(ds);
    if (status != 0) set_err(r->err, r->err_size, "%s: %s: read failed", r->path, name);
    for (size_t i = 0; status == 0 && i < n; i++) {
        long bad = utf8_first_invalid(out[i], strlen(out[i]));
        if (bad >= 0) {
            set_err(r->err, r->err_size, "%s: %s: row %zu: invalid UTF-8 at byte %ld", r->path, name, i, bad);
            status = -1;
        }
    }
    if (status != 0) {
        for (size_t i = 0; i < n; i++) free(out[i]);
        free(out);
        return NULL;
    }
    *count = (int)n;
    return out;
}

static int64_t* read_index(Reader* r, const char* name, int* count) {
    hsize_t dims[2];
    hid_t ds = open_dataset(r, name, 1, dims);
    if (ds < 0) return NULL;
    hid_t ft = H5Dget_type(ds);
    int is_int = H5Tget_class(ft) == H5T_INTEGER;
    const char* what = describe_type(ft);
    H5Tclose(ft);
    if (!is_int) {
        set_err(r->err, r->err_size, "%s: %s: expected int64, got %s", r->path, name, what);
        H5Dclose(ds);
        return NULL;
    }
    size_t n = (size_t)dims[0];
    int64_t* x = mallocCheck((n ? n : 1) * sizeof(int64_t));
    if (n && H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) {
        set_err(r->err, r->err_size, "%s: %s: read failed", r->path, name);
        free(x);
        H5Dclose(ds);
        return NULL;
    }
    H5Dclose(ds);
    *count = (int)n;
    return x;
}

// Reads a string attribute of "/" into buf (absent: buf stays empty). -1 on a wrong type.
static int read_string_attr(Reader* r, const char* name, char* buf, size_t cap) {
    buf[0] = '\0';
    if (H5Aexists(r->file, name) <= 0) return 0;
    hid_t a = H5Aopen(r->file, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    int status = 0;
    if (H5Tget_class(ft) != H5T_STRING) {
        set_err(r->err, r->err_size, "%s: attribute %s: expected a string", r->path, name);
        status = -1;
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char* s = NULL;
        if (H5Aread(a, mt, &s) >= 0 && s) {
            snprintf(buf, cap, "%s", s);
            H5free_memory(s);
        }
        H5Tclose(mt);
    } else {
        size_t width = H5Tget_size(ft);
        char* s = callocCheck(width + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, width);
        if (H5Aread(a, mt, s) >= 0) snprintf(buf, cap, "%s", s);
        H5Tclose(mt);
        free(s);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return status;
}

// Reads an integer attribute of "/" (absent: *present = 0). -1 on a wrong type.
static int read_int_attr(Reader* r, const char* name, long long* value, int* present) {
    *present = 0;
    if (H5Aexists(r->file, name) <= 0) return 0;
    hid_t a = H5Aopen(r->file, name, H5P_DEFAULT);
    hid_t ft = H5Aget_type(a);
    hid_t sp = H5Aget_space(a);
    int status = 0;
    if (H5Tget_class(ft) != H5T_INTEGER || H5Sget_simple_extent_npoints(sp) != 1) {
        set_err(r->err, r->err_size, "%s: attribute %s: expected one integer", r->path, name);
        status = -1;
    } else if (H5Aread(a, H5T_NATIVE_LLONG, value) >= 0) *present = 1;
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    return status;
}

static int read_all(Reader* r, FeatureStore* fs) {
    int n;
    int dim = 0;
    if (read_string_attr(r, "clip_model", fs->clip_model, sizeof fs->clip_model) ||
        read_string_attr(r, "source", fs->source, sizeof fs->source))
        return -1;
    long long attr_dim = 0, normalized = 0;
    int has_dim, has_norm;
    if (read_int_attr(r, "dim", &attr_dim, &has_dim) || read_int_attr(r, "normalized", &normalized, &has_norm)) return -1;
    if (has_norm && normalized != 0 && normalized != 1) {
        set_err(r->err, r->err_size, "%s: attribute normalized: expected 0 or 1, got %lld", r->path, normalized);
        return -1;
    }
    fs->normalized = (int)normalized;

    if (!(fs->text_emb = read_floats(r, "/texts/embeddings", 2, &fs->n_texts, &dim, has_dim ? (int)attr_dim : 0, 1)))
        return -1;
    fs->dim = dim;
    if (!(fs->captions = read_strings(r, "/texts/captions", &n))) return -1;
    if (n != fs->n_texts) {
        for (int i = 0; i < n; i++) free(fs->captions[i]);
        free(fs->captions);
        fs->captions = NULL;
        set_err(r->err, r->err_size, "%s: /texts/captions: %d rows, but /texts/embeddings has %d", r->path, n, fs->n_texts);
        return -1;
    }
    if (!(fs->image_index = read_index(r, "/texts/image_index", &n))) return -1;
    if (n != fs->n_texts) {
        set_err(r->err, r->err_size, "%s: /texts/image_index: %d rows, but /texts/embeddings has %d", r->path, n, fs->n_texts);
        return -1;
    }
    if (link_exists(r->file, "/images")) {
        if (!(fs->image_emb = read_floats(r, "/images/embeddings", 2, &fs->n_images, NULL, dim, 1))) return -1;
        if (!(fs->image_keys = read_strings(r, "/images/keys", &n))) return -1;
        if (n != fs->n_images) {
            for (int i = 0; i < n; i++) free(fs->image_keys[i]);
            free(fs->image_keys);
            fs->image_keys = NULL;
            set_err(r->err, r->err_size, "%s: /images/keys: %d rows, but /images/embeddings has %d", r->path, n, fs->n_images);
            return -1;
        }
        if (check_unique_keys(r->path, fs->image_keys, fs->n_images, r->err, r->err_size)) return -1;
    }
    for (int i = 0; i < fs->n_texts; i++)
        if (fs->image_index[i] >= 0 && !link_exists(r->file, "/images")) {
            set_err(r->err, r->err_size, "%s: /texts/image_index: row %d names image %lld, but the file has no /images "
                    "group (captions without images have -1)", r->path, i, (long long)fs->image_index[i]);
            return -1;
        } else if (fs->image_index[i] < -1 || fs->image_index[i] >= fs->n_images) {
            set_err(r->err, r->err_size, "%s: /texts/image_index: row %d is %lld, outside [-1, %d)", r->path, i,
                    (long long)fs->image_index[i], fs->n_images);
            return -1;
        }
    if (link_exists(r->file, "/vocab")) {
        if (!(fs->vocab_emb = read_floats(r, "/vocab/embeddings", 2, &fs->n_vocab, NULL, dim, 1))) return -1;
        if (!(fs->vocab_words = read_strings(r, "/vocab/words", &n))) return -1;
        if (n != fs->n_vocab) {
            for (int i = 0; i < n; i++) free(fs->vocab_words[i]);
            free(fs->vocab_words);
            fs->vocab_words = NULL;
            set_err(r->err, r->err_size, "%s: /vocab/words: %d rows, but /vocab/embeddings has %d", r->path, n, fs->n_vocab);
            return -1;
        }
    }
    if (link_exists(r->file, "/synth")) {
        const struct { const char* mu_name; const char* cov_name; float** mu; float** cov; } truth[] = {
            {"/synth/gap_mu", "/synth/gap_cov", &fs->true_gap_mu, &fs->true_gap_cov},
            {"/synth/pair_gap_mu", "/synth/pair_gap_cov", &fs->pair_gap_mu, &fs->pair_gap_cov},
        };
        for (int k = 0; k < 2; k++) {
            int rows, cols;
            if (!(*truth[k].mu = read_floats(r, truth[k].mu_name, 1, &rows, NULL, dim, 0))) return -1;
            if (!(*truth[k].cov = read_floats(r, truth[k].cov_name, 2, &rows, &cols, dim, 0))) return -1;
            if (rows != dim) {
                set_err(r->err, r->err_size, "%s: %s: shape [%d, %d], expected [%d, %d]", r->path, truth[k].cov_name, rows,
                        cols, dim, dim);
                return -1;
            }
        }
    }
    // normalized = 1 promises unit rows (float16 storage keeps them within about 1e-3).
    if (fs->normalized) {
        const struct { const char* name; const float* x; int n; } sets[] = {
            {"/images/embeddings", fs->image_emb, fs->n_images},
            {"/texts/embeddings", fs->text_emb, fs->n_texts},
            {"/vocab/embeddings", fs->vocab_emb, fs->n_vocab},
        };
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < sets[s].n; i++) {
                double sq = 0;
                for (int j = 0; j < dim; j++) sq += (double)sets[s].x[(size_t)i * dim + j] * sets[s].x[(size_t)i * dim + j];
                if (fabs(sqrt(sq) - 1.0) > 1e-2) {
                    set_err(r->err, r->err_size, "%s: %s: row %d has norm %.4f, but the file says normalized = 1", r->path,
                            sets[s].name, i, sqrt(sq));
                    return -1;
                }
            }
    }
    return 0;
}

int features_read(const char* path, FeatureStore* fs, char* err, size_t err_size) {
    memset(fs, 0, sizeof *fs);
    if (access(path, R_OK) != 0) {
        set_err(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    QuietHdf5 q = hdf5_quiet();
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        hdf5_restore(q);
        set_err(err, err_size, "%s: not an HDF5 file", path);
        return -1;
    }
    Reader r = {file, path, err, err_size};
    int status = read_all(&r, fs);
    H5Fclose(file);
    hdf5_restore(q);
    if (status != 0) features_free(fs);
    return status;
}

// ---------------------------------------------------------------- writing

static hid_t utf8_string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

// A chunked dataset [rows, cols] (cols = 0: rank 1) of file type ft written from memory type mt.
static int write_dataset(hid_t loc, const char* name, hid_t ft, hid_t mt, hsize_t rows, hsize_t cols, const void* data) {
    int rank = cols ? 2 : 1;
    hsize_t dims[2] = {rows, cols}, maxdims[2] = {H5S_UNLIMITED, cols};
    size_t row_bytes = H5Tget_size(ft) * (cols ? cols : 1);
    hsize_t chunk_rows = (hsize_t)(1u << 20) / row_bytes;  // about 1 MiB per chunk
    if (chunk_rows < 1) chunk_rows = 1;
    if (rows && chunk_rows > rows) chunk_rows = rows;
    hsize_t chunk[2] = {chunk_rows, cols};
    hid_t sp = H5Screate_simple(rank, dims, maxdims);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, rank, chunk);
    hid_t ds = H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    int status = ds < 0 ? -1 : 0;
    if (status == 0 && rows && H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) status = -1;
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
    return status;
}

// /embeddings of a group, float32 or float16 (converted here, stored without HDF5 conversion).
static int write_embeddings(hid_t g, hid_t file_type, int float16, hsize_t rows, hsize_t cols, const float* x) {
    if (!float16) return write_dataset(g, "embeddings", file_type, H5T_NATIVE_FLOAT, rows, cols, x);
    size_t n = (size_t)rows * (size_t)cols;
    uint16_t* h = mallocCheck((n ? n : 1) * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) h[i] = float_to_half(x[i]);
    int st = write_dataset(g, "embeddings", file_type, file_type, rows, cols, h);
    free(h);
    return st;
}

static int write_string_attr(hid_t file, const char* name, const char* value) {
    hid_t t = utf8_string_type();
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int status = a >= 0 && H5Awrite(a, t, &value) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return status;
}

static int write_int_attr(hid_t file, const char* name, int value) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    long long v = value;
    int status = a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return status;
}

static int write_all(hid_t file, const FeatureStore* fs, int float16) {
    hid_t emb_t = float16 ? float16_type() : H5Tcopy(H5T_IEEE_F32LE);
    hid_t str_t = utf8_string_type();
    hsize_t d = (hsize_t)fs->dim;
    int st = 0;
    hid_t g = H5Gcreate2(file, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    st |= write_embeddings(g, emb_t, float16, (hsize_t)fs->n_images, d, fs->image_emb);
    st |= write_dataset(g, "keys", str_t, str_t, (hsize_t)fs->n_images, 0, fs->image_keys);
    H5Gclose(g);
    g = H5Gcreate2(file, "texts", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    st |= write_embeddings(g, emb_t, float16, (hsize_t)fs->n_texts, d, fs->text_emb);
    st |= write_dataset(g, "captions", str_t, str_t, (hsize_t)fs->n_texts, 0, fs->captions);
    st |= write_dataset(g, "image_index", H5T_STD_I64LE, H5T_NATIVE_INT64, (hsize_t)fs->n_texts, 0, fs->image_index);
    H5Gclose(g);
    if (fs->n_vocab > 0) {
        g = H5Gcreate2(file, "vocab", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        st |= write_dataset(g, "words", str_t, str_t, (hsize_t)fs->n_vocab, 0, fs->vocab_words);
        st |= write_dataset(g, "embeddings", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, (hsize_t)fs->n_vocab, d, fs->vocab_emb);
        H5Gclose(g);
    }
    if (fs->true_gap_mu && fs->true_gap_cov && fs->pair_gap_mu && fs->pair_gap_cov) {
        g = H5Gcreate2(file, "synth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        st |= write_dataset(g, "gap_mu", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d, 0, fs->true_gap_mu);
        st |= write_dataset(g, "gap_cov", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d, d, fs->true_gap_cov);
        st |= write_dataset(g, "pair_gap_mu", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d, 0, fs->pair_gap_mu);
        st |= write_dataset(g, "pair_gap_cov", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d, d, fs->pair_gap_cov);
        H5Gclose(g);
    }
    st |= write_string_attr(file, "clip_model", fs->clip_model);
    st |= write_int_attr(file, "dim", fs->dim);
    st |= write_int_attr(file, "normalized", fs->normalized);
    st |= write_string_attr(file, "source", fs->source);
    H5Tclose(str_t);
    H5Tclose(emb_t);
    return st ? -1 : 0;
}

// What the writer refuses: the same checks as the reader, on the in-memory store.
static int validate_for_write(const char* path, const FeatureStore* fs, char* err, size_t err_size) {
    if (fs->dim <= 0 || fs->n_texts < 0 || fs->n_images < 0 || fs->n_vocab < 0) {
        set_err(err, err_size, "%s: dim %d and counts must be positive", path, fs->dim);
        return -1;
    }
    int n_truth = !!fs->true_gap_mu + !!fs->true_gap_cov + !!fs->pair_gap_mu + !!fs->pair_gap_cov;
    if (n_truth != 0 && n_truth != 4) {
        set_err(err, err_size, "%s: /synth: the simulator truth needs all four of gap_mu, gap_cov, pair_gap_mu, pair_gap_cov", path);
        return -1;
    }
    const struct { const char* name; const float* x; int n; } sets[] = {
        {"/images/embeddings", fs->image_emb, fs->n_images},
        {"/texts/embeddings", fs->text_emb, fs->n_texts},
        {"/vocab/embeddings", fs->vocab_emb, fs->n_vocab},
    };
    for (int s = 0; s < 3; s++) {
        if (sets[s].n && !sets[s].x) {
            set_err(err, err_size, "%s: %s: no data", path, sets[s].name);
            return -1;
        }
        for (int i = 0; i < sets[s].n; i++) {
            double sq = 0;
            for (int j = 0; j < fs->dim; j++) {
                float v = sets[s].x[(size_t)i * fs->dim + j];
                if (!isfinite(v)) {
                    set_err(err, err_size, "%s: %s: row %d, column %d is %s", path, sets[s].name, i, j, isnan(v) ? "NaN" : "infinite");
                    return -1;
                }
                sq += (double)v * v;
            }
            if (sq == 0) {
                set_err(err, err_size, "%s: %s: row %d has zero norm", path, sets[s].name, i);
                return -1;
            }
        }
    }
    const struct { const char* name; char* const* s; int n; } strs[] = {
        {"/images/keys", fs->image_keys, fs->n_images},
        {"/texts/captions", fs->captions, fs->n_texts},
        {"/vocab/words", fs->vocab_words, fs->n_vocab},
    };
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < strs[s].n; i++)
            if (!strs[s].s || !strs[s].s[i] || utf8_first_invalid(strs[s].s[i], strlen(strs[s].s[i])) >= 0) {
                set_err(err, err_size, "%s: %s: row %d is missing or not valid UTF-8", path, strs[s].name, i);
                return -1;
            }
    if (check_unique_keys(path, fs->image_keys, fs->n_images, err, err_size)) return -1;
    for (int i = 0; i < fs->n_texts; i++)
        if (!fs->image_index || fs->image_index[i] < -1 || fs->image_index[i] >= fs->n_images) {
            set_err(err, err_size, "%s: /texts/image_index: row %d is outside [-1, %d)", path, i, fs->n_images);
            return -1;
        }
    return 0;
}

int features_write(const char* path, const FeatureStore* fs, int float16, char* err, size_t err_size) {
    if (validate_for_write(path, fs, err, err_size) != 0) return -1;
    if (float16) {
        const struct { const char* name; const float* x; int n; } sets[] = {
            {"/images/embeddings", fs->image_emb, fs->n_images}, {"/texts/embeddings", fs->text_emb, fs->n_texts}};
        for (int s = 0; s < 2; s++)
            for (size_t i = 0; i < (size_t)sets[s].n * (size_t)fs->dim; i++)
                if (fabsf(sets[s].x[i]) >= 65520.0f) {  // rounds to infinity in float16
                    set_err(err, err_size, "%s: %s: row %zu, column %zu is %g, too large for float16", path, sets[s].name,
                            i / (size_t)fs->dim, i % (size_t)fs->dim, sets[s].x[i]);
                    return -1;
                }
    }
    // Temporary beside the target, renamed into place when complete.
    size_t n = strlen(path) + 32;
    char* tmp = mallocCheck(n);
    const char* slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    snprintf(tmp, n, "%.*s.%s.tmp.XXXXXX", dir_len, path, slash ? slash + 1 : path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        set_err(err, err_size, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);  // mkstemp creates 0600; give the file the usual permissions
    close(fd);
    QuietHdf5 q = hdf5_quiet();
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int status = file < 0 ? -1 : write_all(file, fs, float16);
    if (file >= 0 && H5Fclose(file) < 0) status = -1;
    hdf5_restore(q);
    if (status != 0) {
        set_err(err, err_size, "%s: writing the HDF5 file failed (disk full or not writable?)", path);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    fd = open(tmp, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (rename(tmp, path) != 0) {
        set_err(err, err_size, "%s: cannot move the new file into place: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
