/* jarena.c — the scratch arena jansson parses protocol messages into (see
 * jarena.h): the thread's buffer, its bump allocation and the allocator
 * pair handed to jansson. */
#include "im/jarena.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

/* Under AddressSanitizer the arena is poisoned outside the blocks handed
 * out, so a value read after its message was freed (jarena_release) is
 * reported, not silently served from the next message. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define JARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define JARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define JARENA_POISON(p, n) ((void)(p), (void)(n))
#define JARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define JARENA_BYTES 4096   /* a login or heartbeat takes about 1.2 KiB */
#define JARENA_ALIGN 16

typedef struct jarena {
    _Alignas(JARENA_ALIGN) unsigned char buf[JARENA_BYTES];
    size_t used;
    int open;                      /* a parse is running: allocate here */
    int live;                      /* a message parsed here is not freed yet */
} jarena;

static _Thread_local jarena t_arena;
static int jarena_installed;

static void *jarena_malloc(size_t n)
{
    jarena *a = &t_arena;
    size_t need = (n + JARENA_ALIGN - 1) & ~(size_t)(JARENA_ALIGN - 1);
    if (!a->open || need < n || need > JARENA_BYTES - a->used)
        return malloc(n);
    void *p = a->buf + a->used;
    a->used += need;
    JARENA_UNPOISON(p, n);
    return p;
}

static void jarena_free(void *p)
{
    uintptr_t b = (uintptr_t)p, start = (uintptr_t)t_arena.buf;
    if (b >= start && b - start < JARENA_BYTES)
        return;                                  /* goes with the arena */
    free(p);
}

void jarena_install(void)
{
    json_set_alloc_funcs(jarena_malloc, jarena_free);
    jarena_installed = 1;
}

int jarena_open(void)
{
    if (!jarena_installed || t_arena.live)
        return 0;
    t_arena.used = 0;
    t_arena.open = 1;
    t_arena.live = 1;
    JARENA_POISON(t_arena.buf, JARENA_BYTES);
    return 1;
}

void jarena_close(void)
{
    t_arena.open = 0;
}

void jarena_release(void)
{
    t_arena.live = 0;
    t_arena.used = 0;
    JARENA_POISON(t_arena.buf, JARENA_BYTES);
}
