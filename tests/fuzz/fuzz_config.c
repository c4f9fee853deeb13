/* fuzz_config.c — fuzz target for the configuration loader: config_load_file
 * on a file holding the input, config_set with a key and value carved from
 * the input, then config_validate and config_dump on the result.
 *
 * Input: a YAML config file. Its first line, without a leading "#!" (a YAML
 * comment, so "#!app.workers=4" leaves the file loadable), is split at the
 * first '=' into the key and value for config_set.
 *
 * The file is written for every input to one path made with mkstemp under
 * /tmp at the first run (removed at exit); the dumps are written to a
 * second one. Checked: a failed load or set leaves the config unchanged and
 * explains itself (a load error names the file); a loaded config dumps, and
 * the dump loads back to a config that dumps the same (config.h: config_dump
 * writes YAML that config_load_file reads back). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "fuzz.h"
#include "ws/utf8.h"

static char fuzz_path[64], fuzz_dump_path[64];

static void fuzz_cleanup(void)
{
    unlink(fuzz_path);
    unlink(fuzz_dump_path);
}

static void fuzz_tmp(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/imgate-fuzz-config-XXXXXX");
    int fd = mkstemp(path);
    FUZZ_CHECK(fd >= 0);
    close(fd);
}

static void fuzz_write(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(n == 0 || fwrite(p, 1, n, f) == n);
    FUZZ_CHECK(fclose(f) == 0);
}

/* config_dump into a malloc'd string. */
static char *fuzz_dump(const config *c, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(config_dump(c, f) == 0);
    FUZZ_CHECK(fclose(f) == 0);
    return text;
}

/* The dump of c loads back (over the defaults) to a config with the same dump. */
static void fuzz_round_trip(const config *c)
{
    size_t len1, len2;
    char *d1 = fuzz_dump(c, &len1);
    fuzz_write(fuzz_dump_path, d1, len1);
    config back;
    char err[512] = "";
    config_defaults(&back);
    int rc = config_load_file(&back, fuzz_dump_path, 1, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "dump does not load back: %s\n%s", err, d1);
    FUZZ_CHECK(rc == 0);
    char *d2 = fuzz_dump(&back, &len2);
    if (len1 != len2 || memcmp(d1, d2, len1) != 0)
        fprintf(stderr, "dump changes over a round trip:\n%s---\n%s", d1, d2);
    FUZZ_CHECK(len1 == len2 && memcmp(d1, d2, len1) == 0);
    free(d1);
    free(d2);
}

/* config_set on c: on failure c is unchanged (same dump) and err says why. */
static int fuzz_set(config *c, const char *key, const char *value)
{
    size_t l0, l1;
    char *before = fuzz_dump(c, &l0);
    char err[512] = "";
    int rc = config_set(c, key, value, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        FUZZ_CHECK(err[0] != '\0');
        char *after = fuzz_dump(c, &l1);
        FUZZ_CHECK(l0 == l1 && memcmp(before, after, l0) == 0);
        free(after);
    }
    free(before);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_path[0]) {
        fuzz_tmp(fuzz_path, sizeof(fuzz_path));
        fuzz_tmp(fuzz_dump_path, sizeof(fuzz_dump_path));
        atexit(fuzz_cleanup);
    }
    fuzz_write(fuzz_path, data, size);

    config c, before;
    char err[512] = "";
    config_defaults(&c);
    memcpy(&before, &c, sizeof(c));       /* padding too, for the memcmp */
    int rc = config_load_file(&c, fuzz_path, 1, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        FUZZ_CHECK(strncmp(err, fuzz_path, strlen(fuzz_path)) == 0);
        FUZZ_CHECK(memcmp(&c, &before, sizeof(c)) == 0);
    } else {
        (void)config_validate(&c, err, sizeof(err));
        fuzz_round_trip(&c);
    }

    /* config_set with the first line's key=value, on the defaults and on
     * what was loaded. */
    fuzz_in in = { data, size };
    size_t n;
    const uint8_t *line = fuzz_line(&in, &n);
    if (n >= 2 && line[0] == '#' && line[1] == '!') {
        line += 2;
        n -= 2;
    }
    const uint8_t *eq = memchr(line, '=', n);
    size_t kl = eq ? (size_t)(eq - line) : n;
    char *key = fuzz_strdup(line, kl);
    char *value = eq ? fuzz_strdup(eq + 1, n - kl - 1) : fuzz_strdup(line, 0);
    config d;
    config_defaults(&d);
    if (fuzz_set(&d, key, value) == 0) {
        (void)config_validate(&d, err, sizeof(err));
        /* A value given as text (a flag, an environment variable) need not
         * be valid UTF-8, which YAML is; only those must survive a dump. */
        if (utf8_validate(UTF8_ACCEPT, (const uint8_t *)value, strlen(value)) == UTF8_ACCEPT)
            fuzz_round_trip(&d);
    }
    if (rc == 0)
        (void)fuzz_set(&c, key, value);
    free(key);
    free(value);
    return 0;
}
