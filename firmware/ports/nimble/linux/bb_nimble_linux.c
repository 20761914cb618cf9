/*
 * Linux half of port `nimble` (the counterpart of bb_esp32_main.c): the real NimBLE host
 * (apache/mynewt-nimble, porting/npl/linux) running our NimBLE port as a simulated board.
 *
 *   bb_nimble_sim --air SOCKET --name NAME [--die-with-parent]
 *
 * The board asks the air (host/blebridge/sim/air.py) for a bare controller on its shared link:
 * request "controller"(NAME) on the air's Unix socket, answered with a TCP port on 127.0.0.1
 * where the air serves that controller over H4 (host/blebridge/sim/hci_server.py). NimBLE's
 * socket transport (nimble/transport/socket, BLE_SOCK_TYPE linux_tcp) connects there. The
 * Unix connection stays open for the board's life: the air removes the controller when it
 * closes, and the board exits when the air goes away.
 *
 * Then, as bb_sim (firmware/ports/sim/main.c): prints "PTY <slave path>" once the pty exists,
 * serves the host on it, runs until SIGTERM/SIGINT, the air closing, or (--die-with-parent) the
 * parent exiting; SIGUSR1 is a board reset.
 *
 * Threads:
 *   main (core) thread  the only caller of bb_core_* and bb_port_*: the pty, the air socket, and
 *                       an eventfd that bb_port_critical_exit writes when another thread queued
 *                       events; at least every BB_LINUX_TICK_MS to expire questions.
 *   NimBLE host thread  nimble_port_run: every NimBLE callback (bb_on_*, questions).
 *   HCI socket thread   ble_hci_sock_ack_handler: reads the controller's H4 stream.
 * Both NimBLE threads start at boot (nimble_port_init) and run until the process ends.
 *
 * Radio off/on. Upstream NimBLE has no nimble_port_stop/deinit (ESP-IDF additions): radio off
 * is ble_hs_stop (terminates every connection, stops advertising/scanning, resets the
 * controller) with its completion awaited here; radio on again is ble_gatts_reset (before the
 * port re-adds its services) and ble_hs_sched_start (resync: ble_gatts_start, HCI reset, sync).
 * BLE_HS_AUTO_START is 0 (linux/include/syscfg/syscfg.h): the host starts only when asked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "nimble/nimble_npl.h"
#include "nimble/nimble_port.h"
#include "host/ble_hs.h"

#include "bb_config.h"
#include "bb_frame.h"
#include "bb_port.h"
#include "bb_proto.h"
#include "bb_nimble_glue.h"

/* NimBLE's socket transport (ble_hci_socket.c) declares these in no header. */
void ble_hci_sock_ack_handler(void *param);
void ble_hci_sock_set_device(int dev);

#define BB_LINUX_TICK_MS 5            /* longest sleep of the core loop (questions expire in it) */
#define BB_LINUX_HUP_RETRY_MS 100     /* a host that closed the pty is looked for again after */
#define BB_LINUX_AIR_TIMEOUT_MS 10000 /* wait for the air's answer to "controller" */
/* ble_hs_stop waits up to BLE_HS_STOP_ON_SHUTDOWN_TIMEOUT for the peers' disconnections, then
 * resets the controller: our wait for its completion has one more second. */
#define BB_LINUX_STOP_TIMEOUT_MS (MYNEWT_VAL(BLE_HS_STOP_ON_SHUTDOWN_TIMEOUT) + 1000)
#define BB_LINUX_AIR_MSG_MAX 128      /* bytes of the "controller" request and its answer */

static volatile sig_atomic_t s_stop_requested;
static volatile sig_atomic_t s_reset_requested;

static pthread_mutex_t s_crit = PTHREAD_MUTEX_INITIALIZER;
static pthread_t s_core_thread;
static int s_wake_fd = -1;
static int s_pty = -1;
static bool s_host_present;
static uint32_t s_boot_id;
static struct timespec s_t0;

static bool s_started_once;   /* the host was started before: radio on again needs a reset */
static bool s_host_started;   /* ble_hs_sched_start since the last stop */
static struct ble_npl_task s_hci_task, s_host_task;

/* ---- platform (bb_port.h) --------------------------------------------------------------- */

uint32_t bb_port_millis(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint32_t)((t.tv_sec - s_t0.tv_sec) * 1000 + (t.tv_nsec - s_t0.tv_nsec) / 1000000);
}

uint32_t bb_port_boot_id(void)
{
    return s_boot_id;
}

void bb_port_critical_enter(void)
{
    pthread_mutex_lock(&s_crit);
}

void bb_port_critical_exit(void)
{
    pthread_mutex_unlock(&s_crit);
    /* The NimBLE threads queue events under this lock: wake the core to send them. */
    if (s_wake_fd >= 0 && !pthread_equal(pthread_self(), s_core_thread)) {
        uint64_t one = 1;
        ssize_t n = write(s_wake_fd, &one, sizeof one);
        (void)n; /* a full counter (EAGAIN) already means "wake up" */
    }
}

int bb_port_transport_write(const uint8_t *buf, size_t len)
{
    if (!s_host_present) {
        return (int)len; /* nobody has the pty open: bytes go where an unplugged USB's go */
    }
    ssize_t n = write(s_pty, buf, len);
    if (n >= 0) {
        return (int)n;
    }
    if (errno == EAGAIN || errno == EINTR) {
        return 0;
    }
    if (errno == EIO) {
        s_host_present = false;
        return (int)len;
    }
    return -(int)BB_STATUS_EIO;
}

static void *hci_thread(void *param)
{
    ble_hci_sock_ack_handler(param);
    return NULL;
}

static void *host_thread(void *param)
{
    (void)param;
    nimble_port_run();
    return NULL;
}

int bb_port_init(void)
{
    if (getrandom(&s_boot_id, sizeof s_boot_id, 0) != (ssize_t)sizeof s_boot_id) {
        s_boot_id = (uint32_t)time(NULL);
    }
    /* Upstream NimBLE initialises once per process, before anything uses its pools (the port's
     * os_mempool_init in bb_nimble_init needs the pool list nimble_port_init sets up). It
     * connects the socket transport to the controller the air serves (a failure there asserts
     * inside NimBLE; the air answered with a port it listens on). The host does not start
     * before ble_active(True): BLE_HS_AUTO_START is 0. */
    nimble_port_init();
    if (ble_npl_task_init(&s_hci_task, "hci_sock", hci_thread, NULL, 1, BLE_NPL_TIME_FOREVER, NULL, 0) != 0 ||
        ble_npl_task_init(&s_host_task, "ble_host", host_thread, NULL, 1, BLE_NPL_TIME_FOREVER, NULL, 0) != 0) {
        return -(int)BB_STATUS_EIO;
    }
    bb_nimble_init();
    return 0;
}

/* ---- glue for the NimBLE half ----------------------------------------------------------- */

int bb_nimble_stack_init(void)
{
    if (!s_started_once) {
        return 0; /* nimble_port_init ran at boot (bb_port_init) */
    }
    /* The host is stopped (bb_nimble_stack_stop): drop the services of the last activation,
     * the port registers them again before the host starts. */
    return ble_gatts_reset() == 0 ? 0 : -(int)BB_STATUS_EBUSY;
}

int bb_nimble_stack_run(void)
{
    ble_hs_sched_start();
    s_host_started = true;
    s_started_once = true;
    return 0;
}

static pthread_mutex_t s_stop_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_stop_cond;
static bool s_stop_done;

static void host_stop_cb(int status, void *arg)
{
    (void)status;
    (void)arg;
    pthread_mutex_lock(&s_stop_mutex);
    s_stop_done = true;
    pthread_cond_signal(&s_stop_cond);
    pthread_mutex_unlock(&s_stop_mutex);
}

static void deadline_after(struct timespec *t, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

int bb_nimble_stack_stop(void)
{
    int rc = 0;
    if (s_host_started) {
        static struct ble_hs_stop_listener listener;
        pthread_mutex_lock(&s_stop_mutex);
        s_stop_done = false;
        pthread_mutex_unlock(&s_stop_mutex);
        int hs = ble_hs_stop(&listener, host_stop_cb, NULL);
        if (hs == 0) {
            struct timespec deadline;
            deadline_after(&deadline, BB_LINUX_STOP_TIMEOUT_MS);
            pthread_mutex_lock(&s_stop_mutex);
            while (!s_stop_done) {
                if (pthread_cond_timedwait(&s_stop_cond, &s_stop_mutex, &deadline) == ETIMEDOUT) {
                    break;
                }
            }
            bool done = s_stop_done;
            pthread_mutex_unlock(&s_stop_mutex);
            if (!done) {
                rc = -(int)BB_STATUS_ETIMEDOUT;
            }
        } else if (hs != BLE_HS_EALREADY) {
            rc = -(int)BB_STATUS_EIO;
        }
        s_host_started = false;
    }
    bb_nimble_host_stopped();
    return rc;
}

static pthread_mutex_t s_answer_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_answer_cond;
static bool s_answer_signalled;

void bb_nimble_answer_drain(void)
{
    pthread_mutex_lock(&s_answer_mutex);
    s_answer_signalled = false;
    pthread_mutex_unlock(&s_answer_mutex);
}

bool bb_nimble_answer_wait(uint32_t timeout_ms)
{
    struct timespec deadline;
    deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&s_answer_mutex);
    while (!s_answer_signalled) {
        if (pthread_cond_timedwait(&s_answer_cond, &s_answer_mutex, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    bool got = s_answer_signalled;
    s_answer_signalled = false; /* a binary semaphore, as on ESP-IDF */
    pthread_mutex_unlock(&s_answer_mutex);
    return got;
}

void bb_nimble_answer_signal(void)
{
    pthread_mutex_lock(&s_answer_mutex);
    s_answer_signalled = true;
    pthread_cond_signal(&s_answer_cond);
    pthread_mutex_unlock(&s_answer_mutex);
}

static pthread_mutex_t s_events_hold = PTHREAD_MUTEX_INITIALIZER;

void bb_nimble_events_hold(void)
{
    pthread_mutex_lock(&s_events_hold);
}

void bb_nimble_events_release(void)
{
    pthread_mutex_unlock(&s_events_hold);
    uint64_t one = 1;
    ssize_t n = write(s_wake_fd, &one, sizeof one);
    (void)n;
}

void bb_nimble_sleep_ms(uint32_t ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

void bb_nimble_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n <= 0) {
            continue; /* EINTR; getrandom never fails otherwise once the pool is initialised */
        }
        p += n;
        len -= (size_t)n;
    }
}

int bb_nimble_set_adv_tx_power(int8_t dbm)
{
    (void)dbm; /* the simulated radio has one power level */
    return 0;
}

/* ---- the air: a controller for this board ------------------------------------------------ */

/* CBOR of [0, 1, "controller", name] (port_link.py: request id 1, op "controller"). */
static size_t air_request(const char *name, uint8_t *out, size_t cap)
{
    static const char op[] = "controller";
    size_t n = strlen(name);
    size_t need = 3 + 1 + (sizeof op - 1) + 2 + n;
    if (n > 255 || need > cap) {
        return 0;
    }
    size_t i = 0;
    out[i++] = 0x84; /* array(4) */
    out[i++] = 0x00; /* MSG_REQ */
    out[i++] = 0x01; /* id 1 */
    out[i++] = (uint8_t)(0x60 + sizeof op - 1);
    memcpy(out + i, op, sizeof op - 1);
    i += sizeof op - 1;
    if (n < 24) {
        out[i++] = (uint8_t)(0x60 + n);
    } else {
        out[i++] = 0x78;
        out[i++] = (uint8_t)n;
    }
    memcpy(out + i, name, n);
    return i + n;
}

/* One CBOR integer (major type 0 or 1, at most 32 bits) at *p; false when it is something else. */
static bool cbor_int(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    if (*p >= end) {
        return false;
    }
    uint8_t major = **p >> 5, info = **p & 0x1F;
    (*p)++;
    if (major > 1) {
        return false;
    }
    uint64_t u;
    if (info < 24) {
        u = info;
    } else if (info >= 24 && info <= 26) {
        unsigned bytes = 1u << (info - 24);
        if ((size_t)(end - *p) < bytes) {
            return false;
        }
        u = 0;
        for (unsigned k = 0; k < bytes; k++) {
            u = (u << 8) | *(*p)++;
        }
    } else {
        return false;
    }
    *v = major == 0 ? (int64_t)u : -1 - (int64_t)u;
    return true;
}

typedef struct {
    bool got;
    int64_t status;
    int64_t port;
} air_answer_t;

/* [1, 1, errno, port] (port null on an error). */
static void air_answer(void *ctx, const uint8_t *payload, size_t len)
{
    air_answer_t *a = ctx;
    const uint8_t *p = payload, *end = payload + len;
    int64_t kind, id;
    if (len < 4 || *p++ != 0x84 || !cbor_int(&p, end, &kind) || kind != 1 || !cbor_int(&p, end, &id) ||
        id != 1 || !cbor_int(&p, end, &a->status)) {
        return;
    }
    a->port = -1;
    if (a->status == 0 && !cbor_int(&p, end, &a->port)) {
        return;
    }
    a->got = true;
}

/* Connect to the air and get the TCP port of this board's controller. Returns the connected
 * Unix socket (kept open for the board's life) or -1 with a message on stderr. */
static int air_join(const char *air, const char *name, int *port)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (fd < 0 || strlen(air) >= sizeof sa.sun_path) {
        fprintf(stderr, "bb_nimble_sim %s: bad air socket path %s\n", name, air);
        return -1;
    }
    memcpy(sa.sun_path, air, strlen(air) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "bb_nimble_sim %s: cannot join the air at %s: %s\n", name, air, strerror(errno));
        close(fd);
        return -1;
    }
    uint8_t req[BB_LINUX_AIR_MSG_MAX];
    uint8_t wire[BB_FRAME_WIRE_MAX(BB_LINUX_AIR_MSG_MAX)];
    size_t n = air_request(name, req, sizeof req);
    size_t w = n ? bb_frame_encode(req, n, wire, sizeof wire) : 0;
    if (w == 0 || write(fd, wire, w) != (ssize_t)w) {
        fprintf(stderr, "bb_nimble_sim %s: cannot ask the air for a controller\n", name);
        close(fd);
        return -1;
    }
    static bb_frame_decoder_t dec;
    bb_frame_decoder_init(&dec);
    air_answer_t a = {0};
    uint32_t t0 = bb_port_millis();
    while (!a.got) {
        uint32_t waited = bb_port_millis() - t0;
        if (waited >= BB_LINUX_AIR_TIMEOUT_MS) {
            fprintf(stderr, "bb_nimble_sim %s: no answer from the air\n", name);
            close(fd);
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(BB_LINUX_AIR_TIMEOUT_MS - waited)) <= 0) {
            continue;
        }
        uint8_t buf[256];
        ssize_t got = read(fd, buf, sizeof buf);
        if (got <= 0) {
            fprintf(stderr, "bb_nimble_sim %s: the air closed the connection\n", name);
            close(fd);
            return -1;
        }
        bb_frame_decoder_feed(&dec, buf, (size_t)got, air_answer, &a);
    }
    if (a.status != 0 || a.port <= 0 || a.port > 65535) {
        /* Same wording as bb_sim for a taken name: the launcher recognises it. */
        fprintf(stderr, "bb_nimble_sim %s: cannot join the air at %s: %s\n", name, air,
                a.status < 0 ? strerror((int)-a.status) : "bad answer");
        close(fd);
        return -1;
    }
    *port = (int)a.port;
    return fd;
}

/* ---- main loop --------------------------------------------------------------------------- */

static void on_stop(int sig)
{
    (void)sig;
    s_stop_requested = 1;
}

static void on_reset(int sig)
{
    (void)sig;
    s_reset_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop; /* no SA_RESTART: poll() returns EINTR at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_reset;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int open_pty(char *path, size_t cap)
{
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname_r(fd, path, cap) != 0) {
        perror("bb_nimble_sim: pseudo-terminal");
        return -1;
    }
    int slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        perror("bb_nimble_sim: open pty slave");
        close(fd);
        return -1;
    }
    struct termios tio;
    if (tcgetattr(slave, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(slave, TCSANOW, &tio);
    }
    close(slave);
    return fd;
}

static void init_cond(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}

int main(int argc, char **argv)
{
    const char *air = NULL;
    const char *name = NULL;
    bool die_with_parent = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--air") == 0 && i + 1 < argc) {
            air = argv[++i];
        } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strcmp(argv[i], "--die-with-parent") == 0) {
            die_with_parent = true;
        } else {
            air = NULL;
            break;
        }
    }
    if (air == NULL || name == NULL || name[0] == '\0' || strlen(name) > BB_MAX_NAME) {
        fprintf(stderr, "usage: bb_nimble_sim --air SOCKET --name NAME [--die-with-parent]\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &s_t0);
    pid_t parent = getppid();
    install_signals();
    s_core_thread = pthread_self();
    init_cond(&s_stop_cond);
    init_cond(&s_answer_cond);
    s_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s_wake_fd < 0) {
        perror("bb_nimble_sim: eventfd");
        return 1;
    }

    int hci_port = 0;
    int air_fd = air_join(air, name, &hci_port);
    if (air_fd < 0) {
        return 1;
    }
    ble_hci_sock_set_device(hci_port);

    char pty_path[128];
    s_pty = open_pty(pty_path, sizeof pty_path);
    if (s_pty < 0) {
        return 1;
    }
    bb_port_init();
    printf("PTY %s\n", pty_path);
    fflush(stdout);
    /* NimBLE logs to stdout (printf, dprintf(1, ...)): after the PTY line that goes to the
     * board's log (stderr), not into a pipe nobody reads any more. */
    dup2(STDERR_FILENO, STDOUT_FILENO);
    /* Line by line: the board is ended with a signal, and a log cut at a buffer's end hides the
     * last thing it did. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    bb_core_init();

    uint32_t hup_since = 0;
    while (!s_stop_requested) {
        if (s_reset_requested) {
            s_reset_requested = 0;
            bb_port_reset();
            uint32_t id;
            bb_nimble_random(&id, sizeof id);
            s_boot_id = id;
            bb_core_init();
        }
        uint32_t now = bb_port_millis();
        bool watch_pty = s_host_present || now - hup_since >= BB_LINUX_HUP_RETRY_MS;
        struct pollfd fds[3];
        nfds_t nfds = 0;
        int pty_i = -1;
        fds[nfds++] = (struct pollfd){.fd = air_fd, .events = POLLIN};
        fds[nfds++] = (struct pollfd){.fd = s_wake_fd, .events = POLLIN};
        if (watch_pty) {
            pty_i = (int)nfds;
            fds[nfds++] = (struct pollfd){
                .fd = s_pty, .events = POLLIN | (s_host_present && bb_core_tx_pending() ? POLLOUT : 0)};
        }
        int timeout = (!s_host_present && bb_core_tx_pending()) ? 1 : BB_LINUX_TICK_MS;
        int n = poll(fds, nfds, timeout);
        if (n < 0 && errno != EINTR) {
            perror("bb_nimble_sim: poll");
            break;
        }
        if (die_with_parent && getppid() != parent) {
            break;
        }
        if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            uint8_t junk[64];
            ssize_t got = read(air_fd, junk, sizeof junk);
            if (got <= 0) {
                fprintf(stderr, "bb_nimble_sim %s: the air closed the connection\n", name);
                break;
            }
        }
        if (n > 0 && (fds[1].revents & POLLIN)) {
            uint64_t count;
            ssize_t got = read(s_wake_fd, &count, sizeof count);
            (void)got;
        }
        if (n >= 0 && pty_i >= 0) {
            short re = fds[pty_i].revents;
            if (re & POLLIN) {
                uint8_t buf[4096];
                ssize_t got = read(s_pty, buf, sizeof buf);
                if (got > 0) {
                    s_host_present = true;
                    bb_core_rx(buf, (size_t)got);
                }
            }
            if ((re & POLLHUP) && !(re & POLLIN)) {
                s_host_present = false;
                hup_since = bb_port_millis();
            } else if (!(re & POLLHUP)) {
                s_host_present = true;
            }
        }
        bb_nimble_poll();
        pthread_mutex_lock(&s_events_hold); /* never between a held pair of events */
        bb_core_poll();
        pthread_mutex_unlock(&s_events_hold);
    }
    /* Radio off first: the peers see the connections end (the air would drop them anyway). */
    bb_port_ble_activate(false);
    close(s_pty);
    close(air_fd);
    return 0;
}
