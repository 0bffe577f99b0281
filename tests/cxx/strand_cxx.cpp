// tests/cxx/strand_cxx.cpp - strand.h used from C++ (built as C++11, C++17 and C++20 by
// tests/test_header.sh): the header compiles under -Wall -Wextra -Werror -pedantic, a strand
// spawned from C++ runs and is joined with its result, a channel carries a value between two
// strands, and `--layout` prints the public structs' layout for comparison with the C compiler's
// (layout.inc).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "strand.h"

#define CHECK(c) do { if (!(c)) { std::fprintf(stderr, "strand_cxx: FAILED: %s (line %d)\n", #c, __LINE__); std::exit(1); } } while (0)

namespace {

struct pair { int in; int out; };

int root_done; // root's result: its address

extern "C" void *square(void *arg)
{
    pair *p = static_cast<pair *>(arg);
    p->out = p->in * p->in;
    return p;
}

extern "C" void *producer(void *arg)
{
    strand_chan *ch = static_cast<strand_chan *>(arg);
    int v = 42;
    return reinterpret_cast<void *>(static_cast<intptr_t>(strand_chan_send(ch, &v, STRAND_FOREVER)));
}

extern "C" void *root(void *)
{
    pair p = {7, 0};
    int64_t id = strand_spawn(square, &p);
    CHECK(id > 0);
    void *res = nullptr;
    CHECK(strand_join(id, &res) == 0);
    CHECK(res == &p && p.out == 49);

    strand_chan *ch = nullptr;
    CHECK(strand_chan_create(&ch, sizeof(int), 0) == 0);
    int64_t prod = strand_spawn(producer, ch);
    CHECK(prod > 0);
    int got = 0;
    CHECK(strand_chan_recv(ch, &got, strand_deadline_in(10LL * 1000 * 1000 * 1000)) == 0);
    CHECK(got == 42);
    CHECK(strand_join(prod, &res) == 0 && res == nullptr);
    strand_chan_release(ch);

    strand_mutex m;
    CHECK(strand_mutex_init(&m) == 0);
    CHECK(strand_mutex_lock(&m, STRAND_FOREVER) == 0);
    CHECK(strand_mutex_unlock(&m) == 0);
    CHECK(strand_mutex_destroy(&m) == 0);
    return &root_done;
}

void print_layout()
{
#define S(t) std::printf("%s size %zu align %zu\n", #t, sizeof(t), alignof(t));
#define F(t, f) std::printf("%s.%s offset %zu size %zu\n", #t, #f, offsetof(t, f), sizeof(((t *)0)->f));
#include "layout.inc"
#undef S
#undef F
}

} // namespace

int main(int argc, char **argv)
{
    if (argc > 1 && std::strcmp(argv[1], "--layout") == 0) {
        print_layout();
        return 0;
    }
    strand_config cfg;
    std::memset(&cfg, 0, sizeof cfg);
    cfg.workers = 2;
    cfg.no_signals = 1;
    CHECK(strand_init(&cfg) == 0);
    void *res = nullptr;
    CHECK(strand_run(root, nullptr, &res) == 0);
    CHECK(res == &root_done);
    strand_shutdown();
    std::puts("strand_cxx: ok");
    return 0;
}
