#include "common/config.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/utf8.h"

typedef struct {
    double number;  // CFG_NUMBER, CFG_INT (exact integer), CFG_BOOL (0/1)
    char* string;   // CFG_STRING
} ConfigValue;

struct Config {
    const ConfigField* schema;
    int n_fields;
    ConfigValue* values;
};

static const char* json_type_name(const cJSON* item) {
    if (cJSON_IsNumber(item)) return "number";
    if (cJSON_IsString(item)) return "string";
    if (cJSON_IsBool(item)) return "boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsArray(item)) return "array";
    if (cJSON_IsObject(item)) return "object";
    return "invalid";
}

static const char* type_name(ConfigType t) {
    switch (t) {
        case CFG_NUMBER: return "number";
        case CFG_INT: return "integer";
        case CFG_BOOL: return "boolean";
        case CFG_STRING: return "string";
    }
    return "?";
}

__attribute__((format(printf, 3, 4)))
static void set_err(char* err, size_t err_size, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static int field_index(const ConfigField* schema, int n, const char* key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(schema[i].key, key)) return i;
    return -1;
}

// Is `prefix` followed by '.' the start of some schema key? (i.e. an object in the tree)
static int is_section(const ConfigField* schema, int n, const char* prefix) {
    size_t len = strlen(prefix);
    for (int i = 0; i < n; i++)
        if (!strncmp(schema[i].key, prefix, len) && schema[i].key[len] == '.') return 1;
    return 0;
}

static int choice_ok(const char* choices, const char* s) {
    if (!choices) return 1;
    size_t len = strlen(s);
    const char* p = choices;
    while (*p) {
        const char* bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, s, n)) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

// Stores a JSON value into values[idx]; returns 0 or writes an error naming source and key.
static int store_json(Config* cfg, int idx, const cJSON* item, const char* source, char* err, size_t err_size) {
    const ConfigField* f = &cfg->schema[idx];
    ConfigValue* v = &cfg->values[idx];
    switch (f->type) {
        case CFG_NUMBER:
        case CFG_INT:
            if (!cJSON_IsNumber(item)) goto wrong_type;
            if (f->type == CFG_INT && (item->valuedouble != floor(item->valuedouble) || fabs(item->valuedouble) > 9.0e15)) {
                set_err(err, err_size, "%s: %s: expected integer, got %.17g", source, f->key, item->valuedouble);
                return -1;
            }
            v->number = item->valuedouble;
            return 0;
        case CFG_BOOL:
            if (!cJSON_IsBool(item)) goto wrong_type;
            v->number = cJSON_IsTrue(item) ? 1.0 : 0.0;
            return 0;
        case CFG_STRING:
            if (!cJSON_IsString(item)) goto wrong_type;
            if (!choice_ok(f->choices, item->valuestring)) {
                set_err(err, err_size, "%s: %s: \"%s\" is not one of %s", source, f->key, item->valuestring, f->choices);
                return -1;
            }
            free(v->string);
            v->string = strdupCheck(item->valuestring);
            return 0;
    }
wrong_type:
    set_err(err, err_size, "%s: %s: expected %s, got %s", source, f->key, type_name(f->type), json_type_name(item));
    return -1;
}

// Walks the user's JSON object, matching every leaf to the schema.
static int walk(Config* cfg, const cJSON* obj, const char* prefix, const char* source, char* err, size_t err_size,
                unsigned char* seen) {
    for (const cJSON* item = obj->child; item; item = item->next) {
        char path[512];
        if (prefix[0]) snprintf(path, sizeof path, "%s.%s", prefix, item->string);
        else snprintf(path, sizeof path, "%s", item->string);
        int idx = field_index(cfg->schema, cfg->n_fields, path);
        if (idx >= 0) {
            if (seen[idx]) {
                set_err(err, err_size, "%s: %s: key given twice", source, path);
                return -1;
            }
            seen[idx] = 1;
            if (store_json(cfg, idx, item, source, err, err_size)) return -1;
        } else if (is_section(cfg->schema, cfg->n_fields, path)) {
            if (!cJSON_IsObject(item)) {
                set_err(err, err_size, "%s: %s: expected object, got %s", source, path, json_type_name(item));
                return -1;
            }
            if (walk(cfg, item, path, source, err, err_size, seen)) return -1;
        } else {
            set_err(err, err_size, "%s: %s: unknown key", source, path);
            return -1;
        }
    }
    return 0;
}

void json_line_col(const char* text, const char* pos, int* line, int* col) {
    *line = 1;
    *col = 1;
    for (const char* p = text; p < pos && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

// "key=value": the value is parsed with the key's type. Returns the field index, or -1.
static int apply_override(Config* cfg, const char* spec, char* err, size_t err_size) {
    const char* eq = strchr(spec, '=');
    if (!eq || eq == spec) {
        set_err(err, err_size, "--set %s: expected key=value", spec);
        return -1;
    }
    char key[512];
    size_t klen = (size_t)(eq - spec);
    if (klen >= sizeof key) klen = sizeof key - 1;
    memcpy(key, spec, klen);
    key[klen] = '\0';
    const char* value = eq + 1;
    int idx = field_index(cfg->schema, cfg->n_fields, key);
    if (idx < 0) {
        set_err(err, err_size, "--set %s: unknown key", key);
        return -1;
    }
    long bad = utf8_first_invalid(value, strlen(value));
    if (bad >= 0) {
        set_err(err, err_size, "--set %s: the value is not valid UTF-8 (byte %ld of it is 0x%02X)", key, bad,
                (unsigned char)value[bad]);
        return -1;
    }
    const ConfigField* f = &cfg->schema[idx];
    ConfigValue* v = &cfg->values[idx];
    char* end = NULL;
    switch (f->type) {
        case CFG_NUMBER:
        case CFG_INT:
            errno = 0;
            v->number = strtod(value, &end);
            if (!*value || *end || errno) {
                set_err(err, err_size, "--set %s: expected %s, got \"%s\"", key, type_name(f->type), value);
                return -1;
            }
            if (f->type == CFG_INT && v->number != floor(v->number)) {
                set_err(err, err_size, "--set %s: expected integer, got \"%s\"", key, value);
                return -1;
            }
            return idx;
        case CFG_BOOL:
            if (!strcmp(value, "true") || !strcmp(value, "1")) v->number = 1;
            else if (!strcmp(value, "false") || !strcmp(value, "0")) v->number = 0;
            else {
                set_err(err, err_size, "--set %s: expected boolean (true/false), got \"%s\"", key, value);
                return -1;
            }
            return idx;
        case CFG_STRING:
            if (!choice_ok(f->choices, value)) {
                set_err(err, err_size, "--set %s: \"%s\" is not one of %s", key, value, f->choices);
                return -1;
            }
            free(v->string);
            v->string = strdupCheck(value);
            return idx;
    }
    return -1;
}

Config* config_parse(const char* text, const char* source, const ConfigField* schema, int n_fields,
                     const char* const* overrides, int n_overrides, char* err, size_t err_size) {
    Config* cfg = callocCheck(1, sizeof(Config));
    cfg->schema = schema;
    cfg->n_fields = n_fields;
    cfg->values = callocCheck((size_t)n_fields, sizeof(ConfigValue));
    unsigned char* seen = callocCheck((size_t)n_fields, 1);
    cJSON* root = NULL;
    int ok = 0;

    // Defaults first; a schema default that does not parse is a programming error.
    for (int i = 0; i < n_fields; i++) {
        if (!schema[i].default_json) continue;
        cJSON* d = cJSON_Parse(schema[i].default_json);
        if (!d || store_json(cfg, i, d, "schema default", err, err_size))
            FATAL("config schema: bad default for %s: %s", schema[i].key, schema[i].default_json);
        cJSON_Delete(d);
    }

    // A config is UTF-8 text: a stray Latin-1 byte would end up in a run name or a path.
    long bad = utf8_first_invalid(text, strlen(text));
    if (bad >= 0) {
        int line, col;
        json_line_col(text, text + bad, &line, &col);
        set_err(err, err_size, "%s:%d:%d: invalid UTF-8 (byte offset %ld is 0x%02X)", source, line, col, bad,
                (unsigned char)text[bad]);
        goto done;
    }
    const char* end = NULL;
    root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        const char* pos = cJSON_GetErrorPtr();
        int line, col;
        json_line_col(text, pos ? pos : text, &line, &col);
        set_err(err, err_size, "%s:%d:%d: malformed JSON", source, line, col);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        set_err(err, err_size, "%s: expected a JSON object at the top level, got %s", source, json_type_name(root));
        goto done;
    }
    if (walk(cfg, root, "", source, err, err_size, seen)) goto done;
    for (int i = 0; i < n_overrides; i++) {
        int idx = apply_override(cfg, overrides[i], err, err_size);
        if (idx < 0) goto done;
        seen[idx] = 1;
    }
    for (int i = 0; i < n_fields; i++) {
        if (!schema[i].default_json && !seen[i]) {
            set_err(err, err_size, "%s: %s: required key is missing", source, schema[i].key);
            goto done;
        }
    }
    ok = 1;
done:
    cJSON_Delete(root);
    free(seen);
    if (!ok) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

Config* config_load(const char* path, const ConfigField* schema, int n_fields,
                    const char* const* overrides, int n_overrides, char* err, size_t err_size) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        set_err(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    fclose(f);
    char* text = readFileCheck(path, NULL);
    Config* cfg = config_parse(text, path, schema, n_fields, overrides, n_overrides, err, err_size);
    free(text);
    return cfg;
}

void config_free(Config* cfg) {
    if (!cfg) return;
    for (int i = 0; i < cfg->n_fields; i++) free(cfg->values[i].string);
    free(cfg->values);
    free(cfg);
}

static const ConfigValue* get(const Config* cfg, const char* key, ConfigType want) {
    int idx = field_index(cfg->schema, cfg->n_fields, key);
    if (idx < 0) FATAL("config: no key '%s' in the schema", key);
    ConfigType t = cfg->schema[idx].type;
    int compatible = t == want || (want == CFG_NUMBER && t == CFG_INT);
    if (!compatible) FATAL("config: key '%s' is a %s, read as %s", key, type_name(t), type_name(want));
    return &cfg->values[idx];
}

double config_number(const Config* cfg, const char* key) { return get(cfg, key, CFG_NUMBER)->number; }
long config_int(const Config* cfg, const char* key) { return (long)get(cfg, key, CFG_INT)->number; }
int config_bool(const Config* cfg, const char* key) { return get(cfg, key, CFG_BOOL)->number != 0; }
const char* config_string(const Config* cfg, const char* key) { return get(cfg, key, CFG_STRING)->string; }

// Finds or creates the object for the section part of a dotted key.
static cJSON* section_for(cJSON* root, const char* key, const char** leaf) {
    cJSON* obj = root;
    const char* p = key;
    const char* dot;
    while ((dot = strchr(p, '.'))) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(dot - p), p);
        cJSON* child = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!child) child = cJSON_AddObjectToObject(obj, name);
        obj = child;
        p = dot + 1;
    }
    *leaf = p;
    return obj;
}

char* config_to_json(const Config* cfg) {
    cJSON* root = cJSON_CreateObject();
    for (int i = 0; i < cfg->n_fields; i++) {
        const ConfigField* f = &cfg->schema[i];
        const ConfigValue* v = &cfg->values[i];
        const char* leaf;
        cJSON* obj = section_for(root, f->key, &leaf);
        switch (f->type) {
            case CFG_NUMBER:
            case CFG_INT: cJSON_AddNumberToObject(obj, leaf, v->number); break;
            case CFG_BOOL: cJSON_AddBoolToObject(obj, leaf, v->number != 0); break;
            case CFG_STRING:
                if (v->string) cJSON_AddStringToObject(obj, leaf, v->string);
                else cJSON_AddNullToObject(obj, leaf);
                break;
        }
    }
    char* s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

// Markdown table cells: a '|' would end the cell.
static void print_cell(const char* s) {
    for (; *s; s++) {
        if (*s == '|') putchar('\\');
        putchar(*s);
    }
}

void config_print_schema(const ConfigField* schema, int n_fields, int markdown) {
    if (markdown) printf("| key | type | default | meaning |\n| --- | --- | --- | --- |\n");
    for (int i = 0; i < n_fields; i++) {
        const ConfigField* f = &schema[i];
        const char* def = f->default_json ? f->default_json : "(required)";
        if (markdown) {
            printf("| `%s` | %s", f->key, type_name(f->type));
            if (f->choices) {
                printf(" (");
                print_cell(f->choices);
                printf(")");
            }
            printf(" | `%s` | ", def);
            print_cell(f->help);
            printf(" |\n");
        } else {
            printf("  %-32s %-8s %-14s %s\n", f->key, type_name(f->type), def, f->help);
        }
    }
}
