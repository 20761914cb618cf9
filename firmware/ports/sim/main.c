/*
 * bb_sim: the blebridge firmware core built natively, serving the host on a pseudo-terminal
 * and using the Bumble air (host/blebridge/sim/air.py) as its radio.
 *
 *   bb_sim --air SOCKET --name NAME [--die-with-parent]
 *
 * Prints "PTY <slave path>" on stdout once the pty exists, then runs until SIGTERM/SIGINT, the
 * air closing the connection, or (with --die-with-parent) the parent process exiting.
 * SIGUSR1 simulates a board reset: port reset, new boot id, core re-initialised (BOOT is sent).
 *
 * The pty master stays open for the whole run so the host can close and reopen the slave.
 * While no host has the slave open the master reports POLLHUP continuously; the loop then
 * leaves it out of poll() and looks again every BB_SIM_HUP_RETRY_MS, discarding output as an
 * unplugged USB port would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "bb_port.h"
#include "bb_sim.h"

#define LOOP_TICK_MS 20  /* longest sleep of the main loop: the core expires questions in it */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reset_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_reset(int sig)
{
    (void)sig;
    reset_requested = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: bb_sim --air SOCKET --name NAME [--die-with-parent]\n");
}

static int open_pty(char *path, size_t cap)
{
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname_r(fd, path, cap) != 0) {
        perror("bb_sim: pseudo-terminal");
        return -1;
    }
    /* Raw mode on the slave side: no echo, no line discipline, 8-bit clean. The settings stay
     * with the pty while the master is open; the host's serial code sets raw mode again. */
    int slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        perror("bb_sim: open pty slave");
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
            usage();
            return 2;
        }
    }
    if (air == NULL || name == NULL || name[0] == '\0' || strlen(name) > BB_MAX_NAME) {
        usage();
        return 2;
    }
    /* --die-with-parent: the main loop ends once getppid() changes (the owner process exited
     * and we were re-parented), looked at every LOOP_TICK_MS at most. Not PR_SET_PDEATHSIG: it
     * fires when the *thread* that started us ends, which killed a board opened from a worker
     * thread that finished while its process went on using the board. */
    pid_t parent = getppid();
    install_signals();

    char pty_path[128];
    int pty = open_pty(pty_path, sizeof pty_path);
    if (pty < 0) {
        return 1;
    }
    bb_sim_configure(air, name, pty);
    int rc = bb_port_init();
    if (rc != 0) {
        fprintf(stderr, "bb_sim %s: cannot join the air at %s: %s\n", name, air, strerror(-rc));
        return 1;
    }
    printf("PTY %s\n", pty_path);
    fflush(stdout);
    bb_core_init();

    bool host_present = false;
    uint32_t hup_since = 0;
    bool events_held = false;
    while (!stop_requested) {
        if (bb_sim_air_fd() < 0) {
            /* The air went away, seen here or inside a port call (which closed the socket). */
            fprintf(stderr, "bb_sim %s: the air closed the connection\n", name);
            break;
        }
        if (reset_requested) {
            reset_requested = 0;
            bb_port_reset();
            bb_sim_new_boot_id();
            bb_core_init();
        }
        uint32_t now = bb_port_millis();
        /* A host that closed the slave is looked for again after BB_SIM_HUP_RETRY_MS. */
        bool watch_pty = host_present || now - hup_since >= BB_SIM_HUP_RETRY_MS;
        struct pollfd fds[2];
        int nfds = 0;
        int pty_i = -1;
        int air_i = -1;
        if (watch_pty) {
            pty_i = nfds;
            fds[nfds].fd = pty;
            fds[nfds].events = POLLIN | (host_present && bb_core_tx_pending() ? POLLOUT : 0);
            fds[nfds++].revents = 0;
        }
        if (!bb_sim_backlogged()) {
            air_i = nfds;
            fds[nfds].fd = bb_sim_air_fd();
            fds[nfds].events = POLLIN;
            fds[nfds++].revents = 0;
        }
        int timeout = LOOP_TICK_MS;
        if (events_held || (!host_present && bb_core_tx_pending())) {
            timeout = 1;
        } else if (bb_sim_events_queued()) {
            /* Read during a port call made by bb_core_poll (a question expiring): deliver now. */
            timeout = 0;
        } else if (!watch_pty) {
            timeout = (int)(BB_SIM_HUP_RETRY_MS - (now - hup_since));
            timeout = timeout > LOOP_TICK_MS ? LOOP_TICK_MS : (timeout < 1 ? 1 : timeout);
        }
        int n = poll(fds, (nfds_t)nfds, timeout);
        if (n < 0 && errno != EINTR) {
            perror("bb_sim: poll");
            break;
        }
        if (die_with_parent && getppid() != parent) {
            break;
        }
        if (n > 0 && air_i >= 0 && (fds[air_i].revents & (POLLIN | POLLHUP | POLLERR))) {
            bb_sim_air_read(); /* on end of file the socket is closed: the loop ends above */
        }
        if (n >= 0 && pty_i >= 0) {
            short re = fds[pty_i].revents;
            if (re & POLLIN) {
                uint8_t buf[4096];
                ssize_t got = read(pty, buf, sizeof buf);
                if (got > 0) {
                    if (!host_present) {
                        host_present = true;
                        bb_sim_set_host_present(true);
                    }
                    bb_core_rx(buf, (size_t)got);
                }
            }
            if ((re & POLLHUP) && !(re & POLLIN)) {
                if (host_present) {
                    host_present = false;
                    bb_sim_set_host_present(false);
                }
                hup_since = bb_port_millis();
            } else if (!(re & POLLHUP) && !host_present) {
                /* The slave is open again (HUP cleared) though nothing was sent yet. */
                host_present = true;
                bb_sim_set_host_present(true);
            }
        }
        events_held = bb_sim_deliver_events();
        bb_core_poll();
    }
    close(pty);
    return 0;
}
