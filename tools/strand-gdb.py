# strand-gdb.py - gdb commands for programs using strand (live processes and core files).
#
#   (gdb) source tools/strand-gdb.py
#   (gdb) info strands          every strand in the registry: id, name, state, priority,
#                               worker, what it waits on
#   (gdb) strand bt ID          backtrace of a switched-out strand, from its saved frame
#                               pointer (a running strand: use `thread N` and `bt`)
#
# How it works: the runtime keeps the live strands in a lock-free slot array
# (src/registry.c: strand__registry_slots, strand__registry_cap), and each strand's saved
# registers in struct strand's `ctx` (src/context.h). Everything is read through the debug
# information of the program (build with -g: the Debug or RelWithDebInfo build types), so it
# works the same on a core file. Strands beyond STRAND_REGISTRY_SIZE are not listed.
# Invariant: nothing here writes to the inferior; reads that fail (a stack since unmapped)
# end a backtrace instead of raising.
import gdb

STATES = {0: "running", 1: "parking", 2: "parked", 3: "runnable", 4: "done"}
PRIOS = {0: "normal", 1: "max", 2: "high", 3: "low"}
WAITS = {
    0: None, 1: "join", 2: "chan send", 3: "chan recv", 4: "select", 5: "mailbox",
    6: "mutex", 7: "cond", 8: "wait group", 9: "semaphore", 10: "timer", 11: "fd read",
    12: "fd write", 13: "off-load pool",
}
MAX_FRAMES = 64


def _strands():
    """Yield gdb.Value (struct strand *) for every occupied registry slot."""
    try:
        slots = gdb.parse_and_eval("strand__registry_slots")
        cap = int(gdb.parse_and_eval("strand__registry_cap"))
    except gdb.error as e:
        raise gdb.GdbError("strand registry not found (is the program built with -g and "
                           "linked with strand?): %s" % e)
    if int(slots) == 0:
        return
    strand_ptr = gdb.lookup_type("struct strand").pointer()
    ptr_size = strand_ptr.sizeof
    inf = gdb.selected_inferior()
    base = int(slots)
    raw = bytes(inf.read_memory(base, cap * ptr_size))
    order = "little" if _little_endian() else "big"
    for i in range(cap):
        p = int.from_bytes(raw[i * ptr_size:(i + 1) * ptr_size], order)
        if p:
            yield gdb.Value(p).cast(strand_ptr)


def _little_endian():
    return "little" in gdb.execute("show endian", to_string=True)


def _running_on():
    """Map strand address -> worker index, from the scheduler's worker table."""
    out = {}
    try:
        n = int(gdb.parse_and_eval("strand__nworkers"))
        workers = gdb.parse_and_eval("strand__workers")
        for i in range(n):
            cur = int(workers[i]["current"])
            if cur:
                out[cur] = i
    except gdb.error:
        pass
    return out


def _name(s):
    try:
        return s["name"].string(length=32).split("\0", 1)[0]
    except (gdb.error, UnicodeDecodeError):
        return "?"


def _wait_text(s):
    kind = int(s["wait_kind"])
    what = WAITS.get(kind, "kind %d" % kind)
    if what is None:
        return ""
    arg = int(s["wait_arg"])
    obj = int(s["wait_obj"])
    if kind == 1:
        return "join of strand %d" % arg
    if kind in (11, 12):
        return "%s %d" % (what, arg)
    if kind in (5, 10, 13):
        return what
    return "%s 0x%x" % (what, obj)


def _find(sid):
    for s in _strands():
        if int(s["id"]) == sid:
            return s
    return None


def _ctx_regs(s):
    """(frame pointer, pc) saved in the strand's context, per architecture."""
    ctx = s["ctx"]
    fields = [f.name for f in ctx.type.strip_typedefs().fields()]
    if "rbp" in fields:
        return int(ctx["rbp"]), int(ctx["rip"])
    if "fp" in fields:
        return int(ctx["fp"]), int(ctx["lr"])
    raise gdb.GdbError("strand bt: this context back end (ucontext) keeps no frame pointer")


def _describe_pc(pc):
    sym = "??"
    loc = ""
    try:
        block = gdb.block_for_pc(pc)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None and block.function is not None:
            sym = block.function.print_name
        sal = gdb.find_pc_line(pc)
        if sal.symtab is not None:
            loc = " at %s:%d" % (sal.symtab.filename, sal.line)
    except RuntimeError:
        pass
    if sym == "??":
        try:
            text = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
            if not text.startswith("No symbol"):
                sym = text.split(" in section")[0]
        except gdb.error:
            pass
    return "%s%s" % (sym, loc)


class InfoStrands(gdb.Command):
    """List the live strands: info strands"""

    def __init__(self):
        super().__init__("info strands", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        running = _running_on()
        n = 0
        for s in _strands():
            st = int(s["state"])
            w = running.get(int(s), None)
            where = "worker %d" % w if w is not None else "-"
            wait = _wait_text(s) if st in (1, 2) else ""
            gdb.write("%6d  %-20s %-9s prio=%-6s %-9s %s\n" % (
                int(s["id"]), '"%s"' % _name(s), STATES.get(st, str(st)),
                PRIOS.get(int(s["prio"]), "?"), where,
                ("waits on: " + wait) if wait else ""))
            n += 1
        gdb.write("%d strands in the registry\n" % n)


class StrandPrefix(gdb.Command):
    """Commands for strand's green threads (see: help strand bt)."""

    def __init__(self):
        super().__init__("strand", gdb.COMMAND_STACK, prefix=True)


class StrandBt(gdb.Command):
    """Backtrace of a switched-out strand: strand bt ID"""

    def __init__(self):
        super().__init__("strand bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) != 1:
            raise gdb.GdbError("usage: strand bt ID")
        sid = int(argv[0], 0)
        s = _find(sid)
        if s is None:
            raise gdb.GdbError("no strand %d in the registry" % sid)
        if int(s["state"]) == 0:
            w = _running_on().get(int(s))
            raise gdb.GdbError("strand %d is running%s: select its thread and use bt" % (
                sid, " on worker %d" % w if w is not None else ""))
        if int(s["stack"]) == 0:
            raise gdb.GdbError("strand %d has not run yet: it has no stack" % sid)
        lo = int(s["stack"]["lo"])
        hi = int(s["stack"])  # the stack's record sits at the top of its usable memory
        fp, pc = _ctx_regs(s)
        inf = gdb.selected_inferior()
        ptr = gdb.lookup_type("void").pointer().sizeof
        order = "little" if _little_endian() else "big"
        gdb.write('strand %d "%s" (%s)\n' % (sid, _name(s), STATES.get(int(s["state"]), "?")))
        k = 0
        if pc:
            gdb.write("#%-2d 0x%016x in %s\n" % (k, pc, _describe_pc(pc)))
            k += 1
        while k < MAX_FRAMES and lo <= fp and fp + 2 * ptr <= hi and fp % ptr == 0:
            try:
                rec = bytes(inf.read_memory(fp, 2 * ptr))
            except gdb.MemoryError:
                break
            nxt = int.from_bytes(rec[:ptr], order)
            ret = int.from_bytes(rec[ptr:], order)
            if ret == 0:
                break
            gdb.write("#%-2d 0x%016x in %s\n" % (k, ret, _describe_pc(ret - 1)))
            k += 1
            if nxt <= fp:
                break
            fp = nxt


InfoStrands()
StrandPrefix()
StrandBt()
