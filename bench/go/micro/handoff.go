// Hand-off twin of bench/handoff.c: with GOMAXPROCS=1, goroutine A starts goroutine B
// (which goes to the P's runnext, as B does on strand's worker), notes the time and makes a
// raw nanosleep system call of 30 ms; B notes when it starts. Go's sysmon retakes the P
// from a thread in a system call and hands it to another thread. Median over N rounds, µs.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

func benchHandoff(n int) {
	runtime.GOMAXPROCS(1)
	base := time.Now()
	lat := make([]int64, n)
	for i := 0; i < n; i++ {
		var tBlock, tRan int64
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			go func() {
				defer wg.Done()
				tRan = int64(time.Since(base))
			}()
			tBlock = int64(time.Since(base))
			ts := syscall.Timespec{Nsec: 30 * 1000 * 1000}
			syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		}()
		wg.Wait()
		lat[i] = tRan - tBlock
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	fmt.Fprintf(os.Stderr, "handoff: %d rounds, min %.1f us, median %.1f us, max %.1f us\n", n,
		float64(lat[0])/1e3, float64(lat[n/2])/1e3, float64(lat[n-1])/1e3)
	result("handoff", float64(lat[n/2])/1e3, "us")
}
