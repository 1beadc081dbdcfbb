/* nearcache-bench echo server: the transport floor. One nng REP socket with
 * ECHO_CONTEXTS contexts, each cycling RECV -> SEND (the request's own
 * message, unchanged) -> RECV on nng's threads, as the daemon's server does
 * for an L1 hit but with no decoding, lookup or encoding. It runs in its
 * own process, like the daemon, so client and server do not share nng's
 * thread pools. */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define ECHO_CONTEXTS 256 /* as many as nearcached has by default */

typedef struct echo_call {
    nng_aio *aio;
    nng_ctx ctx;
    int sending;
} echo_call;

static void echo_cb(void *arg)
{
    echo_call *c = arg;
    int rv = nng_aio_result(c->aio);
    if (!c->sending) {
        if (rv != 0) {
            if (rv != NNG_ECLOSED && rv != NNG_ECANCELED)
                nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        c->sending = 1;
        nng_ctx_send(c->ctx, c->aio); /* the received message goes back as is */
        return;
    }
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(c->aio));
        nng_aio_set_msg(c->aio, NULL);
        if (rv == NNG_ECLOSED)
            return;
    }
    c->sending = 0;
    nng_ctx_recv(c->ctx, c->aio);
}

/* Serves `url` until SIGTERM or SIGINT. The signals must be blocked in the
 * calling thread before nng starts its threads. Returns 0, or 1. */
static int echo_serve(const char *url, const sigset_t *stop)
{
    nng_socket sock;
    echo_call calls[ECHO_CONTEXTS];
    int n = 0, rv = nng_rep0_open(&sock);
    if (rv == 0)
        rv = nng_listen(sock, url, NULL, 0);
    for (; rv == 0 && n < ECHO_CONTEXTS; n++) {
        calls[n].sending = 0;
        if ((rv = nng_aio_alloc(&calls[n].aio, echo_cb, &calls[n])) != 0)
            break;
        if ((rv = nng_ctx_open(&calls[n].ctx, sock)) != 0) {
            nng_aio_free(calls[n].aio);
            break;
        }
    }
    if (rv != 0) {
        fprintf(stderr, "nearcache-bench echo: %s: %s\n", url, nng_strerror(rv));
        return 1;
    }
    for (int i = 0; i < n; i++)
        nng_ctx_recv(calls[i].ctx, calls[i].aio);
    int sig;
    sigwait(stop, &sig);
    nng_close(sock);
    for (int i = 0; i < n; i++)
        nng_aio_free(calls[i].aio);
    return 0;
}

static void block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

int bench_echo_main(const char *url)
{
    sigset_t stop;
    block_stop_signals(&stop);
    return echo_serve(url, &stop);
}

int bench_echo_fork(const char *url)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid > 0 ? (int)pid : -1;
    sigset_t stop;
    block_stop_signals(&stop);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the bench */
    if (getppid() == 1)
        _exit(0);
    _exit(echo_serve(url, &stop));
}

void bench_echo_stop(int pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}
