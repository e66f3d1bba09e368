// LD_PRELOAD interposer that counts heap allocations in a process.
//
//   cc -shared -fPIC -O2 -o /tmp/alloc_count.so Benchmarks/alloc/alloc_count.c -ldl
//   LD_PRELOAD=/tmp/alloc_count.so edge run --config edge.yaml
//
// Counts every *allocating* call: malloc, calloc, realloc (with a non-zero
// size), posix_memalign, aligned_alloc, memalign, valloc, pvalloc. free is not
// counted. The counter is one process-wide relaxed atomic; edge reads it through
// dlsym(RTLD_DEFAULT, "edge_alloc_count") and exports it as
// `edge_heap_allocations_total` on the admin /metrics endpoint.
//
// Bootstrap: dlsym itself may call calloc/malloc before the real functions are
// known. Those early requests are served from a static bump buffer; free() and
// realloc() recognise pointers into it and never hand them to the real
// allocator.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static uint64_t alloc_count;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);

// ---- bootstrap bump allocator (used only while resolving the real symbols)
#define BOOT_SIZE (256 * 1024)
static _Alignas(64) unsigned char boot_buf[BOOT_SIZE];
static size_t boot_used;
static int resolving;

static int is_boot(const void *p) {
    return (const unsigned char *)p >= boot_buf && (const unsigned char *)p < boot_buf + BOOT_SIZE;
}

// Each bump block: 16-byte header holding the size, then the payload.
static void *boot_alloc(size_t n, size_t align) {
    if (align < 16) align = 16;
    size_t start = (boot_used + 16 + align - 1) & ~(align - 1);
    if (start + n > BOOT_SIZE) return NULL;
    *(size_t *)(boot_buf + start - sizeof(size_t)) = n;
    boot_used = start + n;
    return boot_buf + start;  // zeroed: static storage, never reused
}

static size_t boot_size(const void *p) {
    return *(const size_t *)((const unsigned char *)p - sizeof(size_t));
}

static void resolve(void) {
    if (real_malloc || resolving) return;
    resolving = 1;
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    real_valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
    void *m = dlsym(RTLD_NEXT, "malloc");
    __atomic_store_n(&real_malloc, (void *(*)(size_t))m, __ATOMIC_RELEASE);
    resolving = 0;
}

__attribute__((constructor)) static void alloc_count_init(void) { resolve(); }

static inline void bump(void) { __atomic_fetch_add(&alloc_count, 1, __ATOMIC_RELAXED); }

EXPORT uint64_t edge_alloc_count(void) { return __atomic_load_n(&alloc_count, __ATOMIC_RELAXED); }

EXPORT void *malloc(size_t n) {
    if (!real_malloc) {
        resolve();
        if (!real_malloc) return boot_alloc(n, 16);
    }
    bump();
    return real_malloc(n);
}

EXPORT void *calloc(size_t a, size_t b) {
    if (!real_calloc || !real_malloc) {
        resolve();
        if (!real_calloc || !real_malloc) {
            size_t n;
            if (__builtin_mul_overflow(a, b, &n)) return NULL;
            return boot_alloc(n, 16);
        }
    }
    bump();
    return real_calloc(a, b);
}

EXPORT void free(void *p) {
    if (p == NULL || is_boot(p)) return;
    if (!real_free) resolve();
    if (real_free) real_free(p);
}

EXPORT void *realloc(void *p, size_t n) {
    if (p != NULL && is_boot(p)) {
        // Move a bootstrap block to the real heap (or to a new bump block).
        void *q = malloc(n);
        if (q) {
            size_t old = boot_size(p);
            memcpy(q, p, old < n ? old : n);
        }
        return q;
    }
    if (!real_realloc) {
        resolve();
        if (!real_realloc) return p ? NULL : boot_alloc(n, 16);
    }
    if (n != 0) bump();
    return real_realloc(p, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    if (!real_posix_memalign) {
        resolve();
        if (!real_posix_memalign) {
            void *p = boot_alloc(n, align);
            if (!p) return ENOMEM;
            *out = p;
            return 0;
        }
    }
    bump();
    return real_posix_memalign(out, align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
    if (!real_aligned_alloc) {
        resolve();
        if (!real_aligned_alloc) return boot_alloc(n, align);
    }
    bump();
    return real_aligned_alloc(align, n);
}

EXPORT void *memalign(size_t align, size_t n) {
    if (!real_memalign) {
        resolve();
        if (!real_memalign) return boot_alloc(n, align);
    }
    bump();
    return real_memalign(align, n);
}

EXPORT void *valloc(size_t n) {
    if (!real_valloc) {
        resolve();
        if (!real_valloc) return boot_alloc(n, 4096);
    }
    bump();
    return real_valloc(n);
}

EXPORT void *pvalloc(size_t n) {
    if (!real_pvalloc) {
        resolve();
        if (!real_pvalloc) return boot_alloc(n, 4096);
    }
    bump();
    return real_pvalloc(n);
}
