/* jarena.h — a per-thread scratch arena that jansson parses protocol
 * messages into (no malloc/free per JSON value of a message).
 *
 * jansson's allocator is process-wide: jarena_install() points it at
 * jarena's, which bump-allocates from the calling thread's arena while a
 * parse is open on that thread and uses malloc otherwise (and once the
 * arena is full); its free ignores pointers into the calling thread's
 * arena. So a value parsed into the arena must be freed on the thread that
 * parsed it and must not outlive the message: proto.c parses, handles and
 * frees each message on one worker, synchronously, and keeps no reference
 * (it copies what outlives the message). Values made after the parse, on
 * any thread, are ordinary heap blocks. */
#ifndef IMGATE_IM_JARENA_H
#define IMGATE_IM_JARENA_H

/* Once, at start-up, before any thread uses jansson. */
void jarena_install(void);

/* Opens the parse of a message on this thread: 1 if its values go into
 * the arena (then jarena_release after the message is freed), 0 if not
 * (not installed, or a message parsed into it is still alive here). */
int jarena_open(void);
/* Closes the parse: later allocations go to malloc again. */
void jarena_close(void);
/* The message parsed into the arena is freed: the arena is empty again. */
void jarena_release(void);

#endif
