// JSON configs with a declared schema. Every key a program accepts is a ConfigField
// (dotted path, type, default, help); loading rejects malformed JSON (with line:column),
// unknown keys, wrong types and missing required keys, each error naming the file and the
// key path, e.g. "configs/x.json: train.lr: expected number, got string".
// `--set a.b=value` overrides are parsed with the key's type and validated the same way.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CFG_NUMBER, CFG_INT, CFG_BOOL, CFG_STRING } ConfigType;

typedef struct {
    const char* key;           // dotted path, e.g. "train.lr"
    ConfigType type;
    const char* default_json;  // default as JSON text ("3e-4", "\"cosine\"", "true"); NULL: required
    const char* choices;       // for strings: allowed values separated by '|', or NULL for any
    const char* help;          // one line for --help and docs/CONFIG.md
} ConfigField;

typedef struct Config Config;

// Parses `text` (named `source` in messages) against the schema and applies the overrides
// ("key=value"). Returns NULL and writes the message to err on any error.
Config* config_parse(const char* text, const char* source, const ConfigField* schema, int n_fields,
                     const char* const* overrides, int n_overrides, char* err, size_t err_size);
// Same, reading the file at `path`.
Config* config_load(const char* path, const ConfigField* schema, int n_fields,
                    const char* const* overrides, int n_overrides, char* err, size_t err_size);
void config_free(Config* cfg);

// Typed getters; asking for a key that is not in the schema, or with the wrong type, is a
// programming error and aborts with the key named.
double config_number(const Config* cfg, const char* key);
long config_int(const Config* cfg, const char* key);
int config_bool(const Config* cfg, const char* key);
const char* config_string(const Config* cfg, const char* key);

// The resolved config (defaults and overrides applied) as pretty-printed JSON; caller frees.
char* config_to_json(const Config* cfg);
// One Markdown table row per field, for docs and --help.
void config_print_schema(const ConfigField* schema, int n_fields, int markdown);

// The 1-based line and column of pos in text, for "FILE:LINE:COL: malformed JSON" (cJSON_GetErrorPtr()).
void json_line_col(const char* text, const char* pos, int* line, int* col);

#ifdef __cplusplus
}
#endif
