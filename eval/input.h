// Reading references and results (see input.c).
#pragma once
#include <stddef.h>

#include "eval/eval.h"

typedef struct {
    char* id;
    int id_is_number;
    char** caps;
    int n_caps;
} RefImage;

typedef struct {
    RefImage* images;  // in file order ("images" list first when present)
    size_t n, cap;
} RefSet;

typedef struct {
    char* id;
    int id_is_number;
    char* caption;
} Result;

typedef struct {
    Result* items;
    size_t n, cap;
} ResultSet;

typedef struct {
    EvalImage* images;          // raw (untokenised) captions, in the references' order
    size_t n;
    size_t refs_without_result; // reference images that have no result (not evaluated)
} Pairing;

// Each returns 1, or 0 with a message naming the file and position/row in err.
int read_references(const char* path, RefSet* out, char* err, size_t cap);
int read_results(const char* path, ResultSet* out, char* err, size_t cap);
void free_references(RefSet* r);
void free_results(ResultSet* r);
// Pairs results with references. Duplicate result images and results without references are
// errors: returns 0 and a malloc'd message listing the ids.
int pair_images(const RefSet* refs, const ResultSet* res, const char* refs_path, const char* res_path, Pairing* out,
                char** err_msg);
void free_pairing(Pairing* p);
