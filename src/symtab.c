/*
 * symtab.c - function names for the dump's backtraces from a module's ELF symbol table
 * (.symtab), which names static functions too; dladdr() only sees the exported ones (a
 * frame in a static function of the executable reads "prog+0xa59d" without this).
 *
 * How: for the module dladdr() says holds an address, map its file read-only (once), find
 * SHT_SYMTAB and its string table, and keep its STT_FUNC symbols sorted by address; a
 * lookup is then a binary search. A module without .symtab (stripped) gives nothing and
 * the dump falls back to dladdr(). No library is needed (only <elf.h>).
 *
 * Threads: only strand_dump() calls in, under its own lock, so the cache needs none. The
 * mapped files and tables are kept for the life of the process (a few modules at most).
 */
#include "diag.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODULES 8

typedef struct fsym {
    uintptr_t   lo, hi;   /* offsets from the module's load base: [lo, hi) */
    const char *name;
} fsym;

typedef struct module {
    const void *base;     /* dli_fbase: where it is loaded */
    bool        tried;
    fsym       *syms;
    size_t      n;
    uintptr_t   bias;     /* subtract from a pc: 0 for ET_EXEC, base for ET_DYN */
} module;

static module modules[MODULES];

static int fsym_cmp(const void *a, const void *b)
{
    const fsym *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Load the function symbols of the ELF file at path (64-bit, native byte order). */
static void load(module *m, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) /* the executable named relative to a directory we have left */
        fd = path[0] != '/' ? open("/proc/self/exe", O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(ElfW(Ehdr)))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return;
    size_t size = (size_t)st.st_size;
    const unsigned char *f = map;
    const ElfW(Ehdr) *eh = map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff == 0 || eh->e_shentsize != sizeof(ElfW(Shdr)) ||
        eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > size)
        goto out;
    m->bias = eh->e_type == ET_DYN ? (uintptr_t)m->base : 0;
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(f + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
            continue;
        const ElfW(Shdr) *strs = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > size || strs->sh_offset + strs->sh_size > size ||
            sh[i].sh_entsize != sizeof(ElfW(Sym)))
            goto out;
        const ElfW(Sym) *sym = (const ElfW(Sym) *)(f + sh[i].sh_offset);
        size_t n = sh[i].sh_size / sizeof *sym;
        m->syms = calloc(n ? n : 1, sizeof *m->syms);
        if (m->syms == NULL)
            goto out;
        for (size_t k = 0; k < n; k++) {
            if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || sym[k].st_value == 0 ||
                sym[k].st_name >= strs->sh_size)
                continue;
            const char *name = (const char *)(f + strs->sh_offset + sym[k].st_name);
            uintptr_t lo = (uintptr_t)sym[k].st_value;
            m->syms[m->n++] = (fsym){ lo, lo + (sym[k].st_size ? sym[k].st_size : 1), name };
        }
        qsort(m->syms, m->n, sizeof *m->syms, fsym_cmp);
        return; /* the names point into the mapping, which stays */
    }
out:
    munmap(map, size);
}

static module *module_for(const void *base, const char *path)
{
    for (int i = 0; i < MODULES; i++) {
        module *m = &modules[i];
        if (m->tried && m->base == base)
            return m;
        if (!m->tried) {
            m->tried = true;
            m->base = base;
            load(m, path);
            return m;
        }
    }
    return NULL; /* more modules than slots: dladdr() names what it can */
}

bool strand__symtab_name(uintptr_t pc, const char *module_path, const void *module_base,
                         const char **name, uintptr_t *offset)
{
    if (module_path == NULL || module_base == NULL)
        return false;
    module *m = module_for(module_base, module_path);
    if (m == NULL || m->n == 0 || pc < m->bias)
        return false;
    uintptr_t a = pc - m->bias;
    size_t lo = 0, hi = m->n;
    while (hi - lo > 1) { /* the last symbol starting at or before a */
        size_t mid = lo + (hi - lo) / 2;
        if (m->syms[mid].lo <= a)
            lo = mid;
        else
            hi = mid;
    }
    const fsym *s = &m->syms[lo];
    if (a < s->lo || a >= s->hi)
        return false;
    *name = s->name;
    *offset = a - s->lo;
    return true;
}
