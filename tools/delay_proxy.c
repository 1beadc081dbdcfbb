/* nc-delay-proxy: a TCP proxy for tests and benchmarks that adds latency.
 *
 *   nc-delay-proxy LISTEN_PORT TARGET_HOST TARGET_PORT [--delay-us N] [--up-delay-us N]
 *                  [--pubsub-delay-us N]
 *
 * It listens on 127.0.0.1:LISTEN_PORT and forwards every connection to the
 * target. Data from the target back to the client is held --delay-us (for
 * command connections) or --pubsub-delay-us (for connections whose first
 * bytes contain SUBSCRIBE) microseconds; data towards the target is held
 * --up-delay-us. Order within a connection is kept. SIGUSR1 closes every
 * connection (a network cut); SIGSTOP/SIGCONT freeze it (a partition).
 * One thread, poll(2); it exits on SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define CHUNK     65536

struct chunk {
    struct chunk *next;
    int64_t due_us;
    size_t len, off;
    char data[];
};

struct pipe_dir { /* one direction of one connection */
    int from, to;
    struct chunk *head, *tail;
};

struct conn {
    int used, classified, pubsub;
    struct pipe_dir up, down; /* up: client -> target, down: target -> client */
};

static struct conn conns[MAX_CONNS];
static volatile sig_atomic_t cut_all, stop;
static int64_t delay_us, up_delay_us, pubsub_delay_us;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        cut_all = 1;
    else
        stop = 1;
}

static void close_conn(struct conn *c)
{
    struct pipe_dir *dirs[] = {&c->up, &c->down};
    for (int i = 0; i < 2; i++) {
        while (dirs[i]->head != NULL) {
            struct chunk *n = dirs[i]->head->next;
            free(dirs[i]->head);
            dirs[i]->head = n;
        }
    }
    close(c->up.from);
    close(c->up.to);
    memset(c, 0, sizeof *c);
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static void accept_one(int lfd, const char *host, const char *port)
{
    int cfd = accept(lfd, NULL, NULL);
    if (cfd < 0)
        return;
    int tfd = dial(host, port);
    struct conn *c = NULL;
    for (int i = 0; i < MAX_CONNS && c == NULL; i++)
        if (!conns[i].used)
            c = &conns[i];
    if (tfd < 0 || c == NULL) {
        close(cfd);
        if (tfd >= 0)
            close(tfd);
        return;
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(tfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *c = (struct conn){.used = 1, .up = {cfd, tfd, NULL, NULL}, .down = {tfd, cfd, NULL, NULL}};
}

/* Reads what `d->from` has and queues it; returns -1 on EOF or error. */
static int pull(struct conn *c, struct pipe_dir *d)
{
    struct chunk *k = malloc(sizeof *k + CHUNK);
    ssize_t n = read(d->from, k->data, CHUNK);
    if (n <= 0) {
        free(k);
        return n < 0 && errno == EINTR ? 0 : -1;
    }
    if (d == &c->up && !c->classified) {
        c->classified = 1;
        for (ssize_t i = 0; i + 9 <= n && !c->pubsub; i++)
            c->pubsub = strncasecmp(k->data + i, "SUBSCRIBE", 9) == 0;
    }
    int64_t delay = d == &c->up ? up_delay_us : c->pubsub ? pubsub_delay_us : delay_us;
    k->next = NULL;
    k->len = (size_t)n;
    k->off = 0;
    k->due_us = now_us() + delay;
    if (d->tail != NULL)
        d->tail->next = k;
    else
        d->head = k;
    d->tail = k;
    return 0;
}

/* Writes the chunks that are due; returns -1 on a write error. */
static int push(struct pipe_dir *d, int64_t now)
{
    while (d->head != NULL && d->head->due_us <= now) {
        struct chunk *k = d->head;
        ssize_t n = write(d->to, k->data + k->off, k->len - k->off);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        k->off += (size_t)n;
        if (k->off < k->len)
            return 0;
        d->head = k->next;
        if (d->head == NULL)
            d->tail = NULL;
        free(k);
    }
    return 0;
}

static int64_t next_due(int64_t now)
{
    int64_t best = -1;
    for (int i = 0; i < MAX_CONNS; i++) {
        struct pipe_dir *dirs[] = {&conns[i].up, &conns[i].down};
        for (int j = 0; conns[i].used && j < 2; j++)
            if (dirs[j]->head != NULL) {
                int64_t wait = dirs[j]->head->due_us - now;
                wait = wait < 0 ? 0 : wait;
                if (best < 0 || wait < best)
                    best = wait;
            }
    }
    return best;
}

static void loop(int lfd, const char *host, const char *port)
{
    struct pollfd pfd[1 + 2 * MAX_CONNS];
    while (!stop) {
        if (cut_all) {
            for (int i = 0; i < MAX_CONNS; i++)
                if (conns[i].used)
                    close_conn(&conns[i]);
            cut_all = 0;
        }
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++) {
            pfd[n++] =
                (struct pollfd){.fd = conns[i].used ? conns[i].up.from : -1, .events = POLLIN};
            pfd[n++] =
                (struct pollfd){.fd = conns[i].used ? conns[i].down.from : -1, .events = POLLIN};
        }
        int64_t wait = next_due(now_us());
        struct timespec ts = {.tv_sec = wait / 1000000, .tv_nsec = (wait % 1000000) * 1000};
        if (ppoll(pfd, (nfds_t)n, wait < 0 ? NULL : &ts, NULL) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN)
            accept_one(lfd, host, port);
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];
            if (!c->used)
                continue;
            int bad =
                ((pfd[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) && pull(c, &c->up) < 0) ||
                ((pfd[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) && pull(c, &c->down) < 0);
            int64_t now = now_us();
            bad = bad || push(&c->up, now) < 0 || push(&c->down, now) < 0;
            if (bad)
                close_conn(c);
        }
    }
}

/* Prints the usage to `out` and returns `code`. */
static int usage(FILE *out, int code)
{
    fputs("usage: nc-delay-proxy LISTEN_PORT TARGET_HOST TARGET_PORT [--delay-us N]\n"
          "                      [--up-delay-us N] [--pubsub-delay-us N]\n"
          "       nc-delay-proxy -h | --help | --version\n"
          "Forwards 127.0.0.1:LISTEN_PORT to the target, holding replies --delay-us\n"
          "(--pubsub-delay-us on SUBSCRIBE connections) and requests --up-delay-us.\n"
          "SIGUSR1 closes every connection; SIGTERM exits.\n",
          out);
    return code;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return usage(stdout, 0);
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("nc-delay-proxy %s\n", NC_VERSION);
        return 0;
    }
    if (argc < 4)
        return usage(stderr, 2);
    for (int i = 4; i + 1 < argc; i += 2) {
        int64_t v = atoll(argv[i + 1]);
        if (strcmp(argv[i], "--delay-us") == 0)
            delay_us = v;
        else if (strcmp(argv[i], "--up-delay-us") == 0)
            up_delay_us = v;
        else if (strcmp(argv[i], "--pubsub-delay-us") == 0)
            pubsub_delay_us = v;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 128) != 0) {
        perror("nc-delay-proxy: listen");
        return 1;
    }
    loop(lfd, argv[2], argv[3]);
    return 0;
}
