/*
 * park.pml - Promela model of strand's park/unpark protocol (src/sched_park.c, src/sched_switch.c:
 * strand__park, finish_switch, strand__ready; internal.h:
 * strand__waiter_claim; waiter and waker shaped like mailbox.c), checked by
 * spin from verify/run.sh (called by `make check`).
 *
 * What it proves, for every interleaving of 3 strands on 2 workers, one
 * outside thread and 2 timers:
 *  - no lost wakeup: when nothing can move any more, every strand is DONE
 *    (watchdog assertion on `timeout`; a strand whose message arrived or
 *    whose timer fired never stays PARKED);
 *  - no double schedule: a strand is never pushed on a run queue while it is
 *    already on one, never popped while a worker is running it, and
 *    strand__ready only ever sees PARKING or PARKED;
 *  - a strand only resumes from a park after exactly one party claimed its
 *    waiter record (status written before the ready);
 *  - a waiter record is only touched by a waker/timer while the wait that owns
 *    it is still in progress (the record lives on the waiter's stack).
 *
 * Ownership in the model (mirrors the C code):
 *  - st[s] is the strand's atomic state word; any process may CAS it.
 *  - claim/status/live/armed/firing[s] form strand s's waiter record and
 *    timer; claim is the only word two parties race on.
 *  - msgs/wq/lk[o] are object o's condition, waiter slot and lock; msgs and
 *    wq are touched only with lk[o] held.
 *  - go/sw/why/owner[s] model the context switch between a worker and the
 *    strand it runs; onq[s] counts run-queue entries (ghost, for asserts).
 *
 * Mutants (compile-time switches, each must make spin FIND an error):
 *  -DMUT_CHECK_FIRST        waiter tests the condition before it is PARKING
 *                           and registered, outside the lock (a lost-wakeup bug found early)
 *  -DMUT_PLAIN_PARKED       scheduler stores PARKED instead of CAS from PARKING
 *  -DMUT_CLAIM_UNLOCKED     waker claims the dequeued record after unlocking L
 *                           (record may already be gone: use after return)
 * -DLIVENESS adds the LTL property `<> all strands DONE`, checked for
 * acceptance cycles WITHOUT a fairness assumption (stronger than with one):
 * it rules out livelock (a cycle that never finishes), not only deadlock.
 *
 * Memory model: Promela is sequentially consistent. The C code gets the same
 * orderings from its lock (acquire/release) and from seq_cst CAS on the state
 * and claim words; see verify/README.md.
 */

#define NS      3       /* strands */
#define NW      2       /* workers */
#define NO      3       /* objects (mailbox-like: lock + message count + waiter slot) */
#define NONE    255

/* actors, for the event lines printed when a trail is replayed */
mtype = { S0, S1, S2, THREAD, TIMER1, TIMER2 };

/* strand states: the C enum */
mtype = { RUNNING, PARKING, PARKED, RUNNABLE, DONE };
/* why a strand switched to its worker */
mtype = { PARK, EXIT };

/* waiter status */
#define ST_NONE     0
#define ST_OK       1
#define ST_TIMEDOUT 2

mtype st[NS];

/* waiter record + timer, one per strand (a strand waits on one thing at a time) */
bit  claim[NS];
byte status[NS];
bit  live[NS];          /* ghost: the wait owning the record has not returned */
bit  armed[NS];
bit  firing[NS];

/* objects */
byte msgs[NO];
byte wq[NO];
bit  lk[NO];

/* worker <-> strand switching */
bit   go[NS];           /* worker -> strand: you run now */
bit   sw[NS];           /* strand -> worker: I switched back to you */
mtype why[NS];
byte  owner[NS];        /* 0, or the id (1..NW) of the worker running it */
byte  onq[NS];          /* ghost: copies of s on run queues */

chan rq = [NS] of { byte };     /* all run queues, abstracted to one MPMC queue */

#define ALLDONE (st[0] == DONE && st[1] == DONE && st[2] == DONE)

#define NAME(x) (x == 0 -> S0 : (x == 1 -> S1 : S2))

inline lock(o)   { atomic { lk[o] == 0 -> lk[o] = 1 } }
inline unlock(o) { lk[o] = 0 }

/* push on a run queue: the double-schedule assertions live here */
inline push(t) {
    atomic {
        assert(onq[t] == 0);            /* never on a run queue twice */
        assert(owner[t] == 0);          /* never queued while still on its stack */
        assert(st[t] == RUNNABLE);
        onq[t]++;
        rq!t
    }
}

/* strand__ready: called only by the party that won the claim */
inline ready(t) {
    do
    :: rd = st[t];
       if
       :: rd == PARKING ->
          atomic { if :: st[t] == PARKING -> st[t] = RUNNABLE; rok = 1;
                          printf("MSC: %e: ready %e: PARKING -> RUNNABLE (its scheduler requeues it)\n", whoami, NAME(t))
                       :: else -> rok = 0 fi };
          if :: rok -> break :: else -> skip fi
       :: rd == PARKED ->
          atomic { if :: st[t] == PARKED -> st[t] = RUNNABLE; rok = 1;
                          printf("MSC: %e: ready %e: PARKED -> RUNNABLE, pushed\n", whoami, NAME(t))
                       :: else -> rok = 0 fi };
          if :: rok -> push(t); break :: else -> skip fi
       :: else ->
          assert(false)         /* ready on RUNNING/RUNNABLE/DONE: schedule twice */
       fi
    od
}

/* strand__waiter_claim: CAS(claim 0 -> 1) */
inline claim_cas(t, res) {
    atomic {
        assert(live[t]);                /* record still belongs to a live wait */
        if :: claim[t] == 0 -> claim[t] = 1; res = 1 :: else -> res = 0 fi;
        printf("MSC: %e: claim of %e's waiter record %d\n", whoami, NAME(t), res)
    }
}

/* event waker: make the condition of object o true, wake its waiter if any */
inline send(o) {
    cok = 0;
    lock(o);
    atomic {
        msgs[o]++;
        r = wq[o];
        if
        :: r == NONE -> printf("MSC: %e: locks L%d, puts a message (C%d true), no waiter\n", whoami, o, o)
        :: else -> printf("MSC: %e: locks L%d, puts a message (C%d true), dequeues %e's record\n", whoami, o, o, NAME(r))
        fi
    };
    if
    :: r != NONE ->
       wq[o] = NONE;
#ifndef MUT_CLAIM_UNLOCKED
       claim_cas(r, cok)
#endif
    :: else -> skip
    fi;
    unlock(o);
#ifdef MUT_CLAIM_UNLOCKED
    if :: r != NONE -> claim_cas(r, cok) :: else -> skip fi;
#endif
    /* a failed claim leaves the message for the next waiter */
    if
    :: cok -> assert(live[r]); status[r] = ST_OK; ready(r)
    :: else -> skip
    fi
}

/* waiter: strand `me` waits for a message on object o (timed: with a deadline) */
inline recv(o, timed) {
    do
    :: true ->
#ifdef MUT_CHECK_FIRST
       if
       :: msgs[o] > 0 -> lock(o); msgs[o]--; unlock(o); res = ST_OK; break
       :: msgs[o] == 0 ->
          printf("MSC: %e: checks C%d OUTSIDE the lock: false\n", whoami, o)
       fi;
       atomic { st[me] = PARKING; printf("MSC: %e: state := PARKING\n", whoami) };
       lock(o);
#else
       lock(o);
       if
       :: msgs[o] > 0 ->
          printf("MSC: %e: locks L%d, C%d true: consumes it, no park\n", whoami, o, o);
          msgs[o]--; unlock(o); res = ST_OK; break
       :: msgs[o] == 0 ->
          printf("MSC: %e: locks L%d, C%d false\n", whoami, o, o)
       fi;
       atomic { st[me] = PARKING; printf("MSC: %e: state := PARKING\n", whoami) };
                                        /* published by the unlock below */
#endif
       atomic {                 /* the record is private until wq[o] publishes it */
           claim[me] = 0; status[me] = ST_NONE; live[me] = 1;
           assert(wq[o] == NONE);
           wq[o] = me;
           printf("MSC: %e: registers on L%d, unlocks\n", whoami, o)
       };
       unlock(o);
       if
       :: timed -> atomic { armed[me] = 1; printf("MSC: %e: arms its timer\n", whoami) }
       :: else -> skip
       fi;
       atomic { why[me] = PARK; sw[me] = 1; printf("MSC: %e: switches to its scheduler\n", whoami) };
       atomic { go[me] == 1 -> go[me] = 0; printf("MSC: %e: resumes, status %d (1 OK, 2 TIMEDOUT)\n", whoami, status[me]) };
       assert(st[me] == RUNNING);
       assert(claim[me] == 1 && status[me] != ST_NONE); /* woken by the claimer only */
       if :: timed -> atomic { firing[me] == 0 -> armed[me] = 0 } :: else -> skip fi;
       if
       :: status[me] == ST_TIMEDOUT ->
          lock(o);
          if
          :: wq[o] == me ->
             wq[o] = NONE;
             printf("MSC: %e: timed out: locks L%d, removes its record\n", whoami, o)
          :: else ->
             printf("MSC: %e: timed out: locks L%d, record already dequeued by a waker\n", whoami, o)
          fi;
          unlock(o);
          live[me] = 0; res = ST_TIMEDOUT; break
       :: else ->
          live[me] = 0                  /* woken: recheck under the lock */
       fi
    od
}

proctype Strand(byte me) {
    byte r, res; bit cok, rok; mtype rd, whoami;

    whoami = NAME(me);
    atomic { go[me] == 1 -> go[me] = 0 };              /* first run */
    if
    :: me == 0 ->       /* parker racing a strand waker (S2), then a waker racing S1's timer */
       recv(0, 0);
       assert(res == ST_OK);
       send(1)
    :: me == 1 ->       /* timed wait: S0's wake races the timer */
       recv(1, 1)
    :: me == 2 ->       /* waker of S0, then a timed wait raced by an outside thread */
       send(0);
       recv(2, 1)
    :: else -> skip
    fi;
    atomic { st[me] = DONE; why[me] = EXIT; sw[me] = 1; printf("MSC: %e: DONE\n", whoami) }
}

/* a plain OS thread (not a strand) that sends: it never parks */
proctype Outside() {
    byte r; bit cok, rok; mtype rd, whoami = THREAD;
    send(2)
}

/* timer callback for strand s: one shot per arm; disarm waits for a firing callback */
proctype Timer(byte me) {
    bit tok, cok, rok; mtype rd, whoami;
    whoami = (me == 1 -> TIMER1 : TIMER2);
end_idle:
    do
    :: atomic { armed[me] == 1 -> armed[me] = 0; firing[me] = 1;
                printf("MSC: %e: fires\n", whoami) };
       claim_cas(me, tok);
       if
       :: tok -> status[me] = ST_TIMEDOUT; ready(me)
       :: else -> skip
       fi;
       firing[me] = 0
    od
}

proctype Worker(byte w) {
    byte s; bit ok;
end_idle:
    do
    :: atomic {
           rq?s;
           assert(owner[s] == 0);       /* never run by two workers at once */
           assert(st[s] == RUNNABLE);
           onq[s]--;
           owner[s] = w;
           printf("MSC: W%d pops %e, runs it\n", w, NAME(s))
       };
       st[s] = RUNNING;
       go[s] = 1;
       atomic { sw[s] == 1 -> sw[s] = 0; owner[s] = 0 };   /* back on the worker's stack */
       if
       :: why[s] == PARK ->
#ifdef MUT_PLAIN_PARKED
          atomic { st[s] = PARKED; printf("MSC: W%d: stores %e PARKED (no CAS)\n", w, NAME(s)) }
#else
          atomic { if :: st[s] == PARKING -> st[s] = PARKED; ok = 1 :: else -> ok = 0 fi;
                   printf("MSC: W%d: CAS %e PARKING -> PARKED: %d\n", w, NAME(s), ok) };
          if
          :: ok -> skip
          :: else -> assert(st[s] == RUNNABLE); push(s)  /* a waker came between 3 and 5 */
          fi
#endif
       :: else -> skip
       fi
    od
}

/* no lost wakeup: once nothing can move, every strand must have finished */
active proctype Watchdog() {
    timeout ->
        printf("MSC: quiescent: st=%e,%e,%e msgs=%d,%d,%d\n",
               st[0], st[1], st[2], msgs[0], msgs[1], msgs[2]);
        assert(ALLDONE)
}

init {
    byte i;
    atomic {
        i = 0;
        do
        :: i < NO -> wq[i] = NONE; i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < NS -> st[i] = RUNNABLE; onq[i] = 1; rq!i; run Strand(i); i++
        :: else -> break
        od;
        run Worker(1);
        run Worker(2);
        run Outside();
        run Timer(1);
        run Timer(2)
    }
}

#ifdef LIVENESS
ltl all_done { <> (st[0] == DONE && st[1] == DONE && st[2] == DONE) }
#endif
