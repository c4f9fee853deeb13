/* web.h — pages embedded into the binary at build time (cmake/embed.cmake
 * turns each src/web page into a C array). */
#ifndef IMGATE_WEB_H
#define IMGATE_WEB_H

#include <stddef.h>

typedef struct web_asset {
    const char *name;    /* file name, e.g. "chat.html" */
    const char *data;    /* NUL-terminated */
    size_t len;
} web_asset;

const web_asset *web_asset_find(const char *name);

#endif
