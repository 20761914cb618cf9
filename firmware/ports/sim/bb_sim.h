/*
 * Port sim: what main.c needs from bb_port_sim.c beyond bb_port.h.
 */
#ifndef BB_SIM_H
#define BB_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the air listens and the board's name; set before bb_port_init(). */
void bb_sim_configure(const char *air_socket, const char *name, int pty_master_fd);

/* File descriptor of the air connection (for poll), -1 when not connected. */
int bb_sim_air_fd(void);

/* Read what the air sent (call when bb_sim_air_fd() is readable). Returns false when the air
 * closed the connection. */
bool bb_sim_air_read(void);

/* Decode bytes from the air as bb_sim_air_read() does, without the socket (the fuzz harness
 * firmware/fuzz/fuzz_sim_air.c feeds it directly): responses complete the waiting call, events
 * are queued for bb_sim_deliver_events(). */
void bb_sim_air_feed(const uint8_t *data, size_t len);

/* Use fd as the air connection, request ids from 1 again (the fuzz harness: a socketpair
 * whose other end holds the air's answers). bb_port_init() connects to the air itself. */
void bb_sim_air_attach(int fd);

/* Deliver queued air events to the core through bb_on_*; stops early when the core's event
 * queue is full (the event is kept and retried). Returns true while events remain queued. */
bool bb_sim_deliver_events(void);

/* True while air events wait in the queue: held back by a full core queue, or read during a
 * port call made after the last delivery (they are not on the socket any more, so poll() would
 * not wake for them). */
bool bb_sim_events_queued(void);

/* True when the held events fill more than half of the queue: stop reading the air so that it
 * (and Bumble behind it) is held back instead of events being lost. */
bool bb_sim_backlogged(void);

/* Host side of the pseudo-terminal closed (POLLHUP) or open again. While closed, frames are
 * discarded like bytes sent to an unplugged USB port. */
void bb_sim_set_host_present(bool present);

/* Pick a new boot id (simulated board reset). */
void bb_sim_new_boot_id(void);

#endif /* BB_SIM_H */
