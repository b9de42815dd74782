/*
 * conns.h - the connections libmicrohttpd has open, as far as the server needs to know them:
 * whether a request is being answered on each, and since when it has been waiting for one.
 *
 * libmicrohttpd 0.9.75 closes a connection only when its idle timeout passes without a byte,
 * or when the daemon stops. Two things need more: a graceful stop closes the idle keep-alive
 * connections first (the busy ones close after their answer, which then carries
 * "Connection: close"), and a client that sends its request a byte at a time (slowloris) is
 * cut off once a request has taken longer than the timeout in all, not only between bytes.
 * Both shut the socket's reading side down (shutdown(SHUT_RD)): libmicrohttpd then sees the
 * end of the stream and closes the connection on its own thread, while an answer already
 * being written still goes out. The fd stays libmicrohttpd's; the list is told of a closed
 * connection before its fd is closed, and shutdown is only called under the list's lock, so it
 * never reaches another connection's fd. Thread-safe.
 */
#ifndef SRV_CONNS_H
#define SRV_CONNS_H

#include <stdint.h>

struct srv_conns;
struct srv_conn;

struct srv_conns *srv_conns_new(void); /* NULL when out of memory */
void srv_conns_free(struct srv_conns *cs);

/* A connection opened (fd: its socket) / closed. add returns NULL when out of memory (the
 * connection is then simply not tracked). remove accepts NULL. */
struct srv_conn *srv_conns_add(struct srv_conns *cs, int fd, uint64_t now_us);
void srv_conns_remove(struct srv_conns *cs, struct srv_conn *c);

/* A request's headers arrived (busy) / its answer was sent or it ended (idle since now).
 * Accept NULL. */
void srv_conn_set_busy(struct srv_conns *cs, struct srv_conn *c, int busy, uint64_t now_us);

/* Shuts the reading side of every idle connection that has waited longer than max_wait_us for
 * its next request to be complete (0: every idle connection). Returns how many. */
int srv_conns_close_idle(struct srv_conns *cs, uint64_t now_us, uint64_t max_wait_us);

/* Closes idle connections whose client has half-closed (sent its FIN) and whose bytes have all
 * been read, once idle for settle_us: libmicrohttpd 0.9.75 leaves about 1 in 20 of them in
 * CLOSE-WAIT until the idle timeout (the end of the stream seen together with the request is
 * not acted on). Both sides are shut down, which wakes libmicrohttpd with a hang-up; nothing
 * can be lost, as the client can send no further request and none is waiting to be read.
 * Returns how many. */
int srv_conns_close_half_closed(struct srv_conns *cs, uint64_t now_us, uint64_t settle_us);

/* Connections open now. */
int srv_conns_count(struct srv_conns *cs);

#endif
