/* resp.h — Redis commands in RESP, the protocol's request form, written
 * straight into a caller's buffer: "*<argc>\r\n" and per argument
 * "$<len>\r\n<bytes>\r\n". No allocation and no printf: a login formats
 * five commands, and hiredis's own formatter allocated a buffer and ran
 * sprintf for each. */
#ifndef IMGATE_CLUSTER_RESP_H
#define IMGATE_CLUSTER_RESP_H

#include <stddef.h>

/* The bytes command argv[0..argc) takes; lens may be NULL (strlen each). */
size_t resp_size(int argc, const char **argv, const size_t *lens);

/* Writes the command at out, which has resp_size(...) bytes; returns the
 * end of what it wrote. */
char *resp_put(char *out, int argc, const char **argv, const size_t *lens);

#endif
