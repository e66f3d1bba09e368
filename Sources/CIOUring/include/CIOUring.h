// Thin shim over liburing 2.3 for Swift. No logic lives here: only what Swift
// cannot import directly (flag macros built with `1U << X`, CPU_SET macros) and
// the buffer-ring setup helper that liburing 2.3 does not ship yet.
#ifndef EDGE_CIOURING_H
#define EDGE_CIOURING_H

// libc headers first, without _GNU_SOURCE here: this header is imported next to
// Swift's Glibc module and must see the same definitions (liburing.h defines
// _GNU_SOURCE itself; its include guards keep these as already parsed).
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <sched.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <poll.h>
#include <liburing.h>

// Setup flags (macros built from shifts are not imported into Swift).
static const uint32_t EDGE_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
static const uint32_t EDGE_SETUP_DEFER_TASKRUN = IORING_SETUP_DEFER_TASKRUN;
static const uint32_t EDGE_SETUP_COOP_TASKRUN = IORING_SETUP_COOP_TASKRUN;
static const uint32_t EDGE_SETUP_CQSIZE = IORING_SETUP_CQSIZE;
static const uint32_t EDGE_SETUP_SUBMIT_ALL = IORING_SETUP_SUBMIT_ALL;

static const uint32_t EDGE_CQE_F_BUFFER = IORING_CQE_F_BUFFER;
static const uint32_t EDGE_CQE_F_MORE = IORING_CQE_F_MORE;
static const uint32_t EDGE_CQE_BUFFER_SHIFT = IORING_CQE_BUFFER_SHIFT;
static const uint8_t EDGE_SQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
static const uint8_t EDGE_SQE_IO_LINK = IOSQE_IO_LINK;
static const uint8_t EDGE_SQE_CQE_SKIP_SUCCESS = IOSQE_CQE_SKIP_SUCCESS;

/// Multishot recv selecting buffers from provided-buffer group `bgid`.
static inline void edge_prep_recv_multishot(struct io_uring_sqe *sqe, int fd, uint16_t bgid) {
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = bgid;
}

/// One recv into a buffer of the provided-buffer group (paced reads).
static inline void edge_prep_recv_once(struct io_uring_sqe *sqe, int fd, uint16_t bgid) {
    io_uring_prep_recv(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = bgid;
}

/// Allocates page-aligned memory for a provided-buffer ring and registers it
/// (io_uring_setup_buf_ring only exists from liburing 2.4). Returns NULL and
/// sets *err (negative errno) on failure.
struct io_uring_buf_ring *edge_setup_buf_ring(struct io_uring *ring, unsigned entries, int bgid, int *err);
void edge_free_buf_ring(struct io_uring *ring, struct io_uring_buf_ring *br, unsigned entries, int bgid);

static inline void edge_buf_ring_add(struct io_uring_buf_ring *br, void *addr, unsigned len,
                                     unsigned short bid, int mask, int offset) {
    io_uring_buf_ring_add(br, addr, len, bid, mask, offset);
}
static inline void edge_buf_ring_advance(struct io_uring_buf_ring *br, int count) {
    io_uring_buf_ring_advance(br, count);
}

static const unsigned EDGE_POLL_IN = POLLIN | 0x2000; /* POLLRDHUP (GNU-only macro) */
static const unsigned EDGE_POLL_OUT = POLLOUT;

/// Non-blocking splice between a socket and a pipe (zero-copy relay);
/// returns bytes moved, 0 at EOF, or -errno.
long edge_splice(int fd_in, int fd_out, size_t len);
/// A non-blocking, close-on-exec pipe; `fds[0]` read end. Returns 0 or -errno.
int edge_pipe(int fds[2]);

/* Relaxed atomics on plain int32 counters shared by reactors (admission control). */
static inline int32_t edge_atomic_add_i32(int32_t *p, int32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline int32_t edge_atomic_load_i32(const int32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
/// Capacity of a pipe in bytes (F_GETPIPE_SZ), or -errno.
int edge_pipe_size(int fd);

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int edge_pin_current_thread(int cpu);
/// Writes the CPUs this process may run on (sched_getaffinity) into `out`,
/// returns how many (at most `max`), or -errno.
int edge_allowed_cpus(int *out, int max);
/// Names a thread (visible in /proc/PID/task/TID/comm); at most 15 bytes are kept.
int edge_set_thread_name(pthread_t thread, const char *name);
/// Returns the CPU the calling thread is allowed on if exactly one, else -1.
int edge_current_thread_single_cpu(void);

#endif
