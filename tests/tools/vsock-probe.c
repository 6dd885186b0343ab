/*
 * vsock-probe: run inside a container, it tries every vsock path to the agent and to the
 * host's agent log port, and prints one line per attempt:
 *
 *   PROBE cid=C port=P result=refused errno=N (text)
 *   PROBE cid=C port=P result=connected wrote=W peer=closed|open
 *
 * A connection that gets through writes what an attacker would: garbage to the agent's
 * port, forged log lines (a fake AGENT_READY) to the log port. Scenario
 * tests/scenarios/70-agent-isolation.sh builds it with `gcc -static` and checks that every
 * attempt is refused. Exit status 0 once every attempt has been made.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

struct target {
    unsigned int cid;
    unsigned int port;
    const char *payload;
    size_t len;
};

static const char forged[] =
    "AGENT_READY version=FORGED since_kernel_ms=1 cpus=1 mem_total_kib=1\n"
    "guest-agent: error FORGED-BY-CONTAINER\n";
static const char garbage[] = "\0\0\0\x10\0\0\0\x01\x01\0FORGED-BY-CONTAINER";

static void probe(const struct target *t)
{
    struct sockaddr_vm addr;
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        printf("PROBE cid=%u port=%u result=refused errno=%d (socket: %s)\n", t->cid, t->port,
               errno, strerror(errno));
        return;
    }
    memset(&addr, 0, sizeof(addr));
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = t->cid;
    addr.svm_port = t->port;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        printf("PROBE cid=%u port=%u result=refused errno=%d (%s)\n", t->cid, t->port, errno,
               strerror(errno));
        close(fd);
        return;
    }
    ssize_t wrote = write(fd, t->payload, t->len);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[64];
    const char *peer = "open";
    if (poll(&p, 1, 2000) > 0 && read(fd, buf, sizeof(buf)) <= 0)
        peer = "closed";
    printf("PROBE cid=%u port=%u result=connected wrote=%zd peer=%s\n", t->cid, t->port, wrote,
           peer);
    close(fd);
}

int main(void)
{
    const struct target targets[] = {
        {1, 1024, garbage, sizeof(garbage) - 1}, /* loopback: the agent itself */
        {3, 1024, garbage, sizeof(garbage) - 1}, /* the guest's own CID (host-vmm gives CID 3) */
        {2, 1024, garbage, sizeof(garbage) - 1}, /* the host's port 1024 */
        {2, 1025, forged, sizeof(forged) - 1},   /* the host's agent log port: forge lines */
        {1, 1025, forged, sizeof(forged) - 1},   /* the log port addressed to loopback */
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
        probe(&targets[i]);
    return 0;
}
