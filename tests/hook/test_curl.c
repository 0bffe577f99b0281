/*
 * test_curl.c - libcurl (Debian's libcurl4-openssl, unmodified), easy API, through
 * libstrand_hook: 100 strands on ONE worker each fetch their own file from a local HTTP
 * server this test starts (python3's http.server, threading, on a free loopback port,
 * serving a temporary directory; its listen backlog raised from 5, which would drop
 * most of 100 simultaneous SYNs and cost a second per retransmission); every body is checked byte for byte, and the fetches overlapped
 * (without the hook, one worker runs one curl_easy_perform at a time).
 */
// ctest-timeout: 240
// ctest-label: serial
#include "test_util.h"
#include "server_util.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define FETCHERS 100
#define BODY 20000

static int port;
static char dir[64];
static atomic_int inflight, max_inflight, good;

static void body_of(int i, char *out, size_t len)
{
    for (size_t k = 0; k < len; k++)
        out[k] = (char)('a' + (int)((k * 7 + (size_t)i * 13) % 26));
}

typedef struct sink {
    char  *buf;
    size_t len, cap;
} sink;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t add = size * n;
    if (s->len + add > s->cap)
        return 0; /* too much: curl fails the transfer */
    memcpy(s->buf + s->len, p, add);
    s->len += add;
    return add;
}

static void *fetcher(void *arg)
{
    int i = (int)(intptr_t)arg;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/f%d.txt", port, i);
    sink s = { .buf = malloc(BODY + 1), .cap = BODY + 1 };
    CURL *c = curl_easy_init();
    if (c == NULL || s.buf == NULL)
        return (void *)1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    int now = atomic_fetch_add(&inflight, 1) + 1;
    int seen = atomic_load(&max_inflight);
    while (now > seen && !atomic_compare_exchange_weak(&max_inflight, &seen, now)) {
    }
    CURLcode rc = curl_easy_perform(c);
    atomic_fetch_sub(&inflight, 1);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    void *res = (void *)2;
    char *want = malloc(BODY);
    body_of(i, want, BODY);
    if (rc == CURLE_OK && code == 200 && s.len == BODY && memcmp(s.buf, want, BODY) == 0) {
        atomic_fetch_add(&good, 1);
        res = NULL;
    } else {
        print_error("fetch %d: curl %d (%s), HTTP %ld, %zu bytes\n", i, (int)rc,
                    curl_easy_strerror(rc), code, s.len);
    }
    free(want);
    free(s.buf);
    return res;
}

static void *curl_main(void *arg)
{
    (void)arg;
    int64_t ids[FETCHERS];
    int64_t t0 = strand_now();
    for (int i = 0; i < FETCHERS; i++)
        ids[i] = strand_spawn(fetcher, (void *)(intptr_t)i);
    int bad = 0;
    for (int i = 0; i < FETCHERS; i++) {
        void *res = (void *)-1;
        assert_int_equal(strand_join(ids[i], &res), 0);
        bad += res != NULL;
    }
    print_message("libcurl: %d of %d bodies right, up to %d transfers at once on one worker, "
                  "%.2f s\n", atomic_load(&good), FETCHERS, atomic_load(&max_inflight),
                  (strand_now() - t0) / 1e9);
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&good), FETCHERS);
    assert_true(atomic_load(&max_inflight) > 1);
    return NULL;
}

static void test_curl_fetches(void **state)
{
    (void)state;
    test_deadline(180);
    test_run_strand(curl_main, NULL);
}

static int make_files(void)
{
    snprintf(dir, sizeof dir, "/tmp/strand-curl-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char *b = malloc(BODY);
    for (int i = 0; i < FETCHERS; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/f%d.txt", dir, i);
        FILE *f = fopen(path, "w");
        if (f == NULL)
            return -1;
        body_of(i, b, BODY);
        fwrite(b, 1, BODY, f);
        fclose(f);
    }
    free(b);
    return 0;
}

static void remove_files(void)
{
    for (int i = 0; i < FETCHERS; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/f%d.txt", dir, i);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    raise_nofile();
    if (make_files() != 0) {
        fprintf(stderr, "test_curl: cannot make the files\n");
        return 1;
    }
    port = server_free_port();
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    static char script[] =
        "import functools, http.server, sys\n"
        "http.server.ThreadingHTTPServer.request_queue_size = 512\n"
        "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])\n"
        "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), h).serve_forever()\n";
    char *argv[] = { PYTHON3, "-c", script, portstr, dir, NULL };
    int quiet = open("/dev/null", O_WRONLY);
    int saved = dup(2);
    dup2(quiet, 2); /* the server logs every request on stderr */
    int started = server_start(argv, port);
    dup2(saved, 2);
    close(saved);
    close(quiet);
    if (started != 0) {
        fprintf(stderr, "test_curl: could not start %s http.server\n", PYTHON3);
        remove_files();
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    strand_config cfg = { .workers = 1 };
    if (strand_init(&cfg) != 0) {
        fprintf(stderr, "strand_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl_fetches),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    server_stop();
    remove_files();
    curl_global_cleanup();
    return rc;
}
