/* fuzz_http.c — fuzz target for the HTTP request parser and imgate's rules
 * on top of it (header and body size limits, header-name characters, no
 * chunked bodies), through the connection-free http_request_check.
 *
 * Input: the raw bytes a client sends. Checked: the verdict is one of those
 * http_conn.h documents; the parser is incremental, so a prefix of a request
 * that completes is never an error (it is complete or still incomplete).
 * g_node.cfg holds the defaults with app.maxHeaderBytes and app.maxBodyBytes
 * at the smallest values the config allows (1024), so inputs of a few KB
 * reach the 413/414/431 limits too. */
#include <stdint.h>

#include "core/config.h"
#include "core/node.h"
#include "fuzz.h"
#include "http/http_conn.h"

static int fuzz_status_known(int st)
{
    return st == 0 || st == 1 || st == 400 || st == 411 || st == 413 || st == 414 ||
           st == 431 || st == 500;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        config_defaults(&g_node.cfg);
        g_node.cfg.maxHeaderBytes = 1024;
        g_node.cfg.maxBodyBytes = 1024;
        ready = 1;
    }
    int st = http_request_check(data, size);
    FUZZ_CHECK(fuzz_status_known(st));
    if (st == 0 || st == 1) {
        size_t cuts[2] = { size / 2, size ? size - 1 : 0 };
        for (int i = 0; i < 2; i++) {
            uint8_t *p = fuzz_memdup(data, cuts[i]);
            int sp = http_request_check(p, cuts[i]);
            free(p);
            FUZZ_CHECK(sp == 0 || sp == 1 || sp == 500);
            if (st == 1)
                FUZZ_CHECK(sp == 1 || sp == 500);
        }
    }
    return 0;
}
