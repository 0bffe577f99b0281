/*
 * gdb_target.c - the program tests/test_gdb.sh inspects with tools/strand-gdb.py: it parks
 * named strands in known places (a channel receive inside parked_in_recv, a join, a mailbox
 * receive), prints "READY <recv id> <join id>" and waits to be attached to or dumped.
 * Not a cmocka test (no test_ prefix): test_gdb.sh compiles it against the built library.
 */
#include "strand.h"

#include <stdio.h>
#include <unistd.h>

static strand_chan *ch;

__attribute__((noinline)) static int parked_in_recv(void)
{
    int v = 0;
    return strand_chan_recv(ch, &v, STRAND_FOREVER) + v;
}

static void *recv_main(void *arg)
{
    (void)arg;
    return (void *)(long)parked_in_recv();
}

static void *join_main(void *arg)
{
    return (void *)(long)strand_join(*(int64_t *)arg, NULL);
}

static void *mbox_main(void *arg)
{
    (void)arg;
    char buf[8];
    int64_t from;
    return (void *)(long)strand_recv(buf, sizeof buf, &from, STRAND_FOREVER);
}

int main(void)
{
    strand_config cfg = { .workers = 2 };
    if (strand_init(&cfg) != 0 || strand_chan_create(&ch, sizeof(int), 0) != 0)
        return 1;
    static int64_t recv_id;
    strand_attr a = { .name = "gdb-recv" };
    recv_id = strand_spawn_attr(recv_main, NULL, &a);
    a.name = "gdb-join";
    int64_t join_id = strand_spawn_attr(join_main, &recv_id, &a);
    a.name = "gdb-mbox";
    strand_spawn_attr(mbox_main, NULL, &a);
    usleep(200 * 1000); /* let them park */
    printf("READY %lld %lld\n", (long long)recv_id, (long long)join_id);
    fflush(stdout);
    for (;;)
        pause();
}
