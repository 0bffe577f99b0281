// Fault-handling twins: cancel_latency and monitor_rtt (bench/cancel.c).
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync/atomic"
	"time"
)

// benchCancelLatency: a goroutine blocked in a select on ctx.Done() and its inbox (what
// a cancellable receive is in Go) is cancelled; time from cancel() to the goroutine
// running, the median of n rounds.
func benchCancelLatency(n int) {
	lat := make([]int64, n)
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		inbox := make(chan int64, 1)
		var parked atomic.Int32
		woke := make(chan time.Time, 1)
		go func() {
			parked.Store(1)
			select {
			case <-ctx.Done():
				woke <- time.Now()
			case <-inbox:
				fmt.Fprintln(os.Stderr, "cancel_latency: a message came")
				os.Exit(1)
			}
		}()
		for parked.Load() == 0 {
			runtime.Gosched()
		}
		runtime.Gosched()
		t0 := time.Now()
		cancel()
		t1 := <-woke
		lat[i] = t1.Sub(t0).Nanoseconds()
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	result("cancel_latency", float64(lat[n/2]), "ns")
}

type down struct {
	reason int
	code   int
}

// benchMonitorRtt: spawn a goroutine that fails (panics), learn of it (a deferred
// recover reports on a channel), n times.
func benchMonitorRtt(n int) {
	notices := make(chan down, 1)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			defer func() {
				if r := recover(); r != nil {
					notices <- down{2, r.(int)}
				}
			}()
			panic(7)
		}()
		d := <-notices
		if d.reason != 2 || d.code != 7 {
			fmt.Fprintln(os.Stderr, "monitor_rtt: a wrong notice")
			os.Exit(1)
		}
	}
	result("monitor_rtt", nsPer(time.Since(t0), n), "ns/rtt")
}
