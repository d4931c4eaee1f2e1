#include "common/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/check.h"

static char* join(const char* a, const char* b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char* s = mallocCheck(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

char* tipcap_data_path(const char* relative) {
    const char* env = getenv("TIPCAP_DATA");
    if (env && *env) return join(env, relative);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char* slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        const char* candidates[] = {"../share/tipcap", "../data", "../../data"};  // installed, bin/, build/tests/
        for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
            char* dir = join(exe, candidates[i]);
            char* path = join(dir, relative);
            free(dir);
            if (access(path, R_OK) == 0) return path;
            free(path);
        }
    }
    return join("data", relative);  // relative to the working directory, as a last resort
}

int make_directories(const char* path) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char* p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}
