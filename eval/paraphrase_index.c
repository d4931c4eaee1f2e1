#include "eval/paraphrase_index.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/ngrams.h"

enum { INDEX_VERSION = 1 };
static const char INDEX_MAGIC[8] = {'T', 'C', 'P', 'A', 'R', 'A', 'I', 'X'};

// The table a file was built from: its size and its gzip trailer (CRC-32 and length of the
// uncompressed text), read without decompressing. A copy of the table keeps its identity.
typedef struct {
    uint64_t size;
    uint32_t crc32, isize;
} TableId;

typedef struct {
    char magic[8];
    uint32_t version, header_size;
    uint64_t table_size;
    uint32_t table_crc32, table_isize;
    uint32_t n_words, n_phrases;
    uint64_t n_phrase_words, n_entries, word_bytes;
    uint64_t payload_len;   // bytes after the header, a multiple of 32
    uint64_t payload_hash;
    uint64_t header_hash;   // of the header's bytes before this field
} IndexHeader;

// ---------------------------------------------------------------- checksum
static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// A 64-bit checksum over n bytes (n a multiple of 32): four independent multiply-rotate lanes, so
// checking 50 MB costs a few milliseconds.
static uint64_t checksum(const unsigned char* p, size_t n) {
    const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full;
    uint64_t lane[4] = {P1 + P2, P2, 0, 0 - P1};
    for (size_t i = 0; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * k, 8);
            lane[k] = rotl64(lane[k] + w * P2, 31) * P1;
        }
    uint64_t h = rotl64(lane[0], 1) + rotl64(lane[1], 7) + rotl64(lane[2], 12) + rotl64(lane[3], 18) + n;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    return h;
}

// ---------------------------------------------------------------- layout
typedef struct {
    size_t word_offsets, para_count, para, phrase_words, phrase_len, word_bytes, payload_len;
} Layout;

static Layout layout_of(const IndexHeader* h) {
    Layout l;
    size_t at = 0;
    l.word_offsets = at, at += ((size_t)h->n_words + 1) * 4;
    l.para_count = at, at += (size_t)h->n_phrases * 4;
    l.para = at, at += (size_t)h->n_entries * 4;
    l.phrase_words = at, at += (size_t)h->n_phrase_words * 2;
    l.phrase_len = at, at += (size_t)h->n_phrases;
    l.word_bytes = at, at += (size_t)h->word_bytes;
    l.payload_len = (at + 31) & ~(size_t)31;
    return l;
}

static uint64_t header_checksum(const IndexHeader* h) {
    unsigned char buf[128] = {0};
    memcpy(buf, h, offsetof(IndexHeader, header_hash));
    return checksum(buf, sizeof buf);
}

// Checks an index image (header and payload) against the table; fills ix on success.
static int parse_image(void* image, size_t len, const TableId* id, ParaIndex* ix) {
    const IndexHeader* h = image;
    if (len < sizeof *h || memcmp(h->magic, INDEX_MAGIC, 8) || h->version != INDEX_VERSION || h->header_size != sizeof *h ||
        h->header_hash != header_checksum(h))
        return 0;
    if (h->table_size != id->size || h->table_crc32 != id->crc32 || h->table_isize != id->isize) return 0;
    if (h->n_words > 65536 || h->n_phrases == UINT32_MAX || h->n_entries > UINT32_MAX || h->n_phrase_words >= UINT32_MAX ||
        h->word_bytes > UINT32_MAX)
        return 0;
    Layout l = layout_of(h);
    if (l.payload_len != h->payload_len || len != sizeof *h + l.payload_len) return 0;
    const unsigned char* payload = (const unsigned char*)image + sizeof *h;
    if (checksum(payload, l.payload_len) != h->payload_hash) return 0;
    memset(ix, 0, sizeof *ix);
    ix->n_words = h->n_words;
    ix->n_phrases = h->n_phrases;
    ix->n_phrase_words = h->n_phrase_words;
    ix->n_entries = h->n_entries;
    ix->word_offsets = (const uint32_t*)(payload + l.word_offsets);
    ix->para_count = (const uint32_t*)(payload + l.para_count);
    ix->para = (const uint32_t*)(payload + l.para);
    ix->phrase_words = (const uint16_t*)(payload + l.phrase_words);
    ix->phrase_len = payload + l.phrase_len;
    ix->word_bytes = (const char*)(payload + l.word_bytes);
    // the structure too, so that no later read can leave the arrays
    if (ix->word_offsets[0] != 0 || ix->word_offsets[ix->n_words] != h->word_bytes) return 0;
    for (uint32_t w = 0; w < ix->n_words; w++)
        if (ix->word_offsets[w] > ix->word_offsets[w + 1]) return 0;
    uint64_t words = 0, entries = 0;
    for (uint32_t p = 0; p < ix->n_phrases; p++) {
        if (ix->phrase_len[p] > PARA_MAX_WORDS) return 0;
        words += ix->phrase_len[p];
        entries += ix->para_count[p];
    }
    if (words != ix->n_phrase_words || entries != ix->n_entries) return 0;
    unsigned bad = 0;
    for (uint64_t k = 0; k < ix->n_phrase_words; k++) bad |= ix->phrase_words[k] >= ix->n_words;
    for (uint64_t k = 0; k < ix->n_entries; k++) bad |= ix->para[k] >= ix->n_phrases;
    return !bad;
}

// ---------------------------------------------------------------- the table's identity
static int table_identity(const char* path, TableId* id, char* err, size_t err_cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    unsigned char head[2], tail[8];
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, err_cap, "cannot read the paraphrase table %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return 0;
    }
    int ok = st.st_size >= 18 && pread(fd, head, 2, 0) == 2 && head[0] == 0x1f && head[1] == 0x8b &&
             pread(fd, tail, 8, st.st_size - 8) == 8;
    close(fd);
    if (!ok) {
        snprintf(err, err_cap, "cannot read the paraphrase table %s (not a complete gzip file)", path);
        return 0;
    }
    id->size = (uint64_t)st.st_size;
    id->crc32 = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
    id->isize = (uint32_t)tail[4] | (uint32_t)tail[5] << 8 | (uint32_t)tail[6] << 16 | (uint32_t)tail[7] << 24;
    return 1;
}

void para_index_paths(const char* table_path, char* paths[2]) {
    char p[PATH_MAX];
    paths[0] = snprintf(p, sizeof p, "%s.tipcap-index", table_path) < (int)sizeof p ? strdup(p) : NULL;
    paths[1] = NULL;
    TableId id;
    char err[64];
    if (!table_identity(table_path, &id, err, sizeof err)) return;
    const char* xdg = getenv("XDG_CACHE_HOME");
    const char* home = getenv("HOME");
    int n;
    if (xdg && *xdg) n = snprintf(p, sizeof p, "%s/tipcap/paraphrase-%llu-%08x.tipcap-index", xdg, (unsigned long long)id.size, id.crc32);
    else if (home && *home) n = snprintf(p, sizeof p, "%s/.cache/tipcap/paraphrase-%llu-%08x.tipcap-index", home, (unsigned long long)id.size, id.crc32);
    else return;
    if (n < (int)sizeof p) paths[1] = strdup(p);
}

// ---------------------------------------------------------------- reading the table
// The decompressed table comes from the system's zlib when it can be loaded at run time (the
// evaluator links no compression library), otherwise from a `gzip -dc` pipe.
typedef struct {
    void* lib;
    void* (*open)(const char*, const char*);
    int (*read)(void*, void*, unsigned);
    int (*close)(void*);
    void* gz;
    FILE* pipe;
} GzStream;

static int gz_open(GzStream* g, const char* path) {
    memset(g, 0, sizeof *g);
    g->lib = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    if (g->lib) {
        *(void**)&g->open = dlsym(g->lib, "gzopen");
        *(void**)&g->read = dlsym(g->lib, "gzread");
        *(void**)&g->close = dlsym(g->lib, "gzclose");
        if (g->open && g->read && g->close && (g->gz = g->open(path, "rb"))) return 1;
        dlclose(g->lib);
        g->lib = NULL;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' 2>/dev/null", path);
    g->pipe = popen(cmd, "r");
    return g->pipe != NULL;
}

// Bytes read, 0 at the end, -1 on an error.
static long gz_read(GzStream* g, char* buf, size_t cap) {
    if (g->gz) return g->read(g->gz, buf, cap > (1u << 30) ? 1u << 30 : (unsigned)cap);
    size_t got = fread(buf, 1, cap, g->pipe);
    return got ? (long)got : (ferror(g->pipe) ? -1 : 0);
}

// 1 when the whole stream was read without an error.
static int gz_close(GzStream* g, int read_error) {
    int ok = !read_error;
    if (g->gz) {
        ok = g->close(g->gz) == 0 && ok;
        dlclose(g->lib);
    } else if (g->pipe) {
        ok = pclose(g->pipe) == 0 && ok;
    }
    return ok;
}

// Lines from the stream through one large buffer.
typedef struct {
    GzStream* in;
    char* buf;
    size_t cap, start, end;
    int error;
} LineReader;

static char* next_line(LineReader* r, size_t* len) {
    for (;;) {
        char* nl = r->end > r->start ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;
        if (nl) {
            char* line = r->buf + r->start;
            *len = (size_t)(nl - line);
            r->start = (size_t)(nl - r->buf) + 1;
            return line;
        }
        // keep the partial line, read more
        if (r->start) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end == r->cap) {
            r->cap = r->cap ? 2 * r->cap : (size_t)8 << 20;
            r->buf = realloc(r->buf, r->cap);
            if (!r->buf) abort();
        }
        long got = gz_read(r->in, r->buf + r->end, r->cap - r->end);
        if (got < 0) r->error = 1;
        if (got <= 0) {
            if (r->end == 0) return NULL;
            *len = r->end;  // a last line without a newline
            r->start = r->end = 0;
            return r->buf;
        }
        r->end += (size_t)got;
    }
}

// ---------------------------------------------------------------- building
static void* grow(void* p, size_t* cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    p = realloc(p, c * elem);
    if (!p) abort();
    *cap = c;
    return p;
}

// Distinct phrases (word-id sequences) of the table, interned.
typedef struct {
    uint32_t* words;      // all phrases' words
    size_t n_words, cap_words;
    uint32_t* start;      // [n + 1]
    uint8_t* len;
    size_t n, cap;
    uint32_t* slots;      // open addressing: phrase id + 1, 0 empty
    uint64_t* slot_hash;
    size_t n_slots;
} PhraseSet;

static uint64_t hash_ids(const uint32_t* ids, int n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (int i = 0; i < n; i++) h = (h ^ ids[i]) * 0x100000001B3ull, h ^= h >> 29;
    return h;
}

static uint32_t phrase_intern(PhraseSet* s, const uint32_t* ids, int n) {
    if (2 * (s->n + 1) > s->n_slots) {
        size_t ns = s->n_slots ? 2 * s->n_slots : 1 << 20;
        uint32_t* slots = calloc(ns, sizeof *slots);
        uint64_t* hashes = calloc(ns, sizeof *hashes);
        if (!slots || !hashes) abort();
        for (size_t j = 0; j < s->n_slots; j++) {
            if (!s->slots[j]) continue;
            size_t t = s->slot_hash[j] & (ns - 1);
            while (slots[t]) t = (t + 1) & (ns - 1);
            slots[t] = s->slots[j];
            hashes[t] = s->slot_hash[j];
        }
        free(s->slots);
        free(s->slot_hash);
        s->slots = slots;
        s->slot_hash = hashes;
        s->n_slots = ns;
    }
    uint64_t h = hash_ids(ids, n);
    size_t j = h & (s->n_slots - 1);
    while (s->slots[j]) {
        uint32_t p = s->slots[j] - 1;
        if (s->slot_hash[j] == h && s->len[p] == n && !memcmp(s->words + s->start[p], ids, (size_t)n * sizeof *ids)) return p;
        j = (j + 1) & (s->n_slots - 1);
    }
    s->start = grow(s->start, &s->cap, s->n + 2, sizeof *s->start);
    s->len = realloc(s->len, s->cap);
    if (!s->len) abort();
    s->words = grow(s->words, &s->cap_words, s->n_words + (size_t)n, sizeof *s->words);
    memcpy(s->words + s->n_words, ids, (size_t)n * sizeof *ids);
    s->start[s->n] = (uint32_t)s->n_words;
    s->len[s->n] = (uint8_t)n;
    s->n_words += (size_t)n;
    s->slots[j] = (uint32_t)++s->n;
    s->slot_hash[j] = h;
    return (uint32_t)(s->n - 1);
}

// Reads the table (triples of lines: probability, reference phrase, paraphrase; words split on
// space, tab, CR and FF) into an index image. Returns the malloc'd image, or NULL with err.
static void* build_image(const char* table_path, const TableId* id, size_t* image_len, char* err, size_t err_cap) {
    GzStream gz;
    if (!gz_open(&gz, table_path)) {
        snprintf(err, err_cap, "cannot open %s (neither zlib nor gzip)", table_path);
        return NULL;
    }
    Vocab words;
    vocab_init(&words);
    PhraseSet phrases;
    memset(&phrases, 0, sizeof phrases);
    uint32_t* refs = NULL;
    uint32_t* paras = NULL;
    size_t n_entries = 0, cap_refs = 0, cap_paras = 0, lines_read = 0;
    LineReader rd = {&gz, NULL, 0, 0, 0, 0};
    uint32_t ids[2][PARA_MAX_WORDS];
    int n_ids[2] = {0, 0}, fits[2] = {0, 0};
    int which = 0;  // 0: probability, 1: reference phrase, 2: paraphrase
    char* line;
    size_t got;
    while ((line = next_line(&rd, &got))) {
        lines_read++;
        if (which == 0) { which = 1; continue; }
        int side = which - 1;
        int cnt = 0, ok = 1;
        char* end = line + got;
        for (char* p = line; p < end;) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f')) p++;
            if (p == end) break;
            char* e = p;
            while (e < end && *e != ' ' && *e != '\t' && *e != '\r' && *e != '\f') e++;
            if (cnt == PARA_MAX_WORDS) ok = 0;
            else ids[side][cnt++] = vocab_add(&words, p, (size_t)(e - p));
            p = e;
        }
        n_ids[side] = cnt;
        fits[side] = ok;
        if (which == 1) { which = 2; continue; }
        which = 0;
        if (!fits[0] || !fits[1]) continue;
        refs = grow(refs, &cap_refs, n_entries + 1, sizeof *refs);
        paras = grow(paras, &cap_paras, n_entries + 1, sizeof *paras);
        refs[n_entries] = phrase_intern(&phrases, ids[0], n_ids[0]);
        paras[n_entries] = phrase_intern(&phrases, ids[1], n_ids[1]);
        n_entries++;
    }
    free(rd.buf);
    void* image = NULL;
    if (!gz_close(&gz, rd.error) || lines_read == 0) {
        snprintf(err, err_cap, "cannot read the paraphrase table %s (not a complete gzip file)", table_path);
    } else if (words.n_words > 65536 || phrases.n >= UINT32_MAX || phrases.n_words >= UINT32_MAX || n_entries > UINT32_MAX) {
        snprintf(err, err_cap, "paraphrase table %s: %zu words, %zu phrases, %zu entries: more than the index holds (65,536 words)",
                 table_path, words.n_words, phrases.n, n_entries);
    } else {
        IndexHeader h;
        memset(&h, 0, sizeof h);
        memcpy(h.magic, INDEX_MAGIC, 8);
        h.version = INDEX_VERSION;
        h.header_size = sizeof h;
        h.table_size = id->size;
        h.table_crc32 = id->crc32;
        h.table_isize = id->isize;
        h.n_words = (uint32_t)words.n_words;
        h.n_phrases = (uint32_t)phrases.n;
        h.n_phrase_words = phrases.n_words;
        h.n_entries = n_entries;
        for (size_t w = 0; w < words.n_words; w++) h.word_bytes += words.lens[w];
        Layout l = layout_of(&h);
        h.payload_len = l.payload_len;
        *image_len = sizeof h + l.payload_len;
        image = calloc(1, *image_len);
        if (!image) abort();
        unsigned char* payload = (unsigned char*)image + sizeof h;
        uint32_t* word_offsets = (uint32_t*)(payload + l.word_offsets);
        char* word_bytes = (char*)(payload + l.word_bytes);
        uint32_t at = 0;
        for (size_t w = 0; w < words.n_words; w++) {
            word_offsets[w] = at;
            memcpy(word_bytes + at, words.words[w], words.lens[w]);
            at += words.lens[w];
        }
        word_offsets[words.n_words] = at;
        uint16_t* phrase_words = (uint16_t*)(payload + l.phrase_words);
        for (size_t k = 0; k < phrases.n_words; k++) phrase_words[k] = (uint16_t)phrases.words[k];
        memcpy(payload + l.phrase_len, phrases.len, phrases.n);
        // entries grouped by reference phrase, file order kept within a group (counting sort)
        uint32_t* para_count = (uint32_t*)(payload + l.para_count);
        uint32_t* para = (uint32_t*)(payload + l.para);
        for (size_t e = 0; e < n_entries; e++) para_count[refs[e]]++;
        uint32_t* fill = malloc((phrases.n + 1) * sizeof *fill);
        if (!fill) abort();
        fill[0] = 0;
        for (size_t p = 0; p < phrases.n; p++) fill[p + 1] = fill[p] + para_count[p];
        for (size_t e = 0; e < n_entries; e++) para[fill[refs[e]]++] = paras[e];
        free(fill);
        h.payload_hash = checksum(payload, l.payload_len);
        h.header_hash = header_checksum(&h);
        memcpy(image, &h, sizeof h);
    }
    vocab_free(&words);
    free(phrases.words);
    free(phrases.start);
    free(phrases.len);
    free(phrases.slots);
    free(phrases.slot_hash);
    free(refs);
    free(paras);
    return image;
}

// ---------------------------------------------------------------- caching
static int make_parent_dirs(const char* path) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char* p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return 0;
        *p = '/';
    }
    return 1;
}

// Writes through a temporary beside path and a rename, so a reader never sees a partial index.
static int write_atomic(const char* path, const void* image, size_t len) {
    if (!make_parent_dirs(path)) return 0;
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) return 0;
    int fd = mkstemp(tmp);
    if (fd < 0) return 0;
    const char* p = image;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) break;
        p += w;
        left -= (size_t)w;
    }
    int ok = left == 0 && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) unlink(tmp);
    return ok;
}

// 1 when path holds a valid index of the table (then mapped into ix); *existed tells whether
// there was a file at all.
static int map_index(const char* path, const TableId* id, ParaIndex* ix, int* existed) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *existed = fd >= 0;
    if (fd < 0) return 0;
    struct stat st;
    void* map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(IndexHeader))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return 0;
    if (!parse_image(map, (size_t)st.st_size, id, ix)) {
        munmap(map, (size_t)st.st_size);
        return 0;
    }
    ix->storage = map;
    ix->storage_len = (size_t)st.st_size;
    ix->mapped = 1;
    return 1;
}

int para_index_open(const char* table_path, ParaIndex* ix, char* err, size_t err_cap) {
    memset(ix, 0, sizeof *ix);
    TableId id;
    if (!table_identity(table_path, &id, err, err_cap)) return 0;
    char* paths[2];
    para_index_paths(table_path, paths);
    int found = 0, stale = -1;
    for (int k = 0; k < 2 && !found; k++) {
        int existed = 0;
        if (paths[k]) found = map_index(paths[k], &id, ix, &existed);
        if (!found && existed && stale < 0) stale = k;
    }
    if (!found) {
        if (stale >= 0) fprintf(stderr, "tipcap-eval: note: %s is stale or damaged; rebuilding it\n", paths[stale]);
        else fprintf(stderr, "tipcap-eval: note: indexing the paraphrase table %s (once per table)\n", table_path);
        size_t len = 0;
        void* image = build_image(table_path, &id, &len, err, err_cap);
        if (image) {
            int cached = 0;
            for (int k = 0; k < 2 && !cached; k++) cached = paths[k] && write_atomic(paths[k], image, len);
            if (!cached)
                fprintf(stderr, "tipcap-eval: warning: cannot write the paraphrase index (%s, %s); it is rebuilt on every run\n",
                        paths[0] ? paths[0] : "-", paths[1] ? paths[1] : "no cache folder");
            found = parse_image(image, len, &id, ix);
            if (found) ix->storage = image, ix->storage_len = len;
            else {
                snprintf(err, err_cap, "internal error: the paraphrase index built from %s does not verify", table_path);
                free(image);
            }
        }
    }
    free(paths[0]);
    free(paths[1]);
    return found;
}

void para_index_close(ParaIndex* ix) {
    if (ix->mapped) munmap(ix->storage, ix->storage_len);
    else free(ix->storage);
    memset(ix, 0, sizeof *ix);
}
