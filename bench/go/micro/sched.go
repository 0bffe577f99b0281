// Scheduler twins: yield, spawn, skynet, spawn_outside, idle_mem.
// Each mirrors the shape of its C program (same N, same batching) so the per-op
// figures are comparable; see the C file of the same name for the strand side.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// yielders runs k goroutines each calling Gosched n times; returns ns per switch.
func yielders(k, n int) float64 {
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(k)
	for i := 0; i < k; i++ {
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < n; j++ {
				runtime.Gosched()
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	return nsPer(time.Since(t0), k*n)
}

func benchYield(n int) {
	runtime.GOMAXPROCS(1)
	result("yield", yielders(2, n), "ns/switch")
}

func benchYieldBusy2(n int) {
	runtime.GOMAXPROCS(2)
	result("yield_busy2", yielders(4, n), "ns/switch")
}

// benchSpawn: spawn batches of 1000 goroutines and wait for each batch, like the C
// side spawning 1000 strands and joining each.
func benchSpawn(n int) {
	const batch = 1000
	var wg sync.WaitGroup
	sink := make([]int64, batch)
	t0 := time.Now()
	for done := 0; done < n; done += batch {
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func(i int) {
				sink[i]++
				wg.Done()
			}(i)
		}
		wg.Wait()
	}
	result("spawn", nsPer(time.Since(t0), n), "ns/strand")
}

// benchSpawnRow: n goroutines started in a row, then all waited for (each hands back a
// value, as the C side's strands do to strand_join), like spawn_row.c.
func benchSpawnRow(n int) {
	var wg sync.WaitGroup
	res := make([]int64, n)
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			res[i] = 1
			wg.Done()
		}(i)
	}
	wg.Wait()
	el := time.Since(t0)
	var sum int64
	for _, v := range res {
		sum += v
	}
	if sum != int64(n) {
		fmt.Fprintf(os.Stderr, "spawn_row: lost results (%d)\n", sum)
		os.Exit(1)
	}
	result("spawn_row", nsPer(el, n), "ns/strand")
}

// benchFirstPark: n fresh goroutines, each run until it blocks on a channel receive; the
// time until all have started, per goroutine, like first_park in spawn_row.c.
func benchFirstPark(n int) {
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
			finished.Done()
		}()
	}
	started.Wait()
	el := time.Since(t0)
	close(release)
	finished.Wait()
	result("first_park", nsPer(el, n), "ns/strand")
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line[6:])
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024
		}
	}
	return -1
}

// benchIdleMem: n goroutines blocked on one channel receive; RSS growth per goroutine.
func benchIdleMem(n int) {
	debug.SetGCPercent(-1) // no GC churn while counting; nothing here is garbage
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	before := rssBytes()
	started.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
			finished.Done()
		}()
	}
	started.Wait()
	after := rssBytes()
	close(release)
	finished.Wait()
	per := float64(after-before) / float64(n)
	fmt.Fprintf(os.Stderr, "idle_mem: %d goroutines, RSS %d -> %d MiB\n", n, before>>20, after>>20)
	result("idle_mem", per, "bytes/strand")
}

// skynet is the classic benchmark: each node spawns div children and sums their
// answers received over a channel.
func skynet(c chan int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	sub := size / div
	for i := 0; i < div; i++ {
		go skynet(rc, num+i*sub, sub, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func runSkynet(name string, n int) {
	c := make(chan int)
	t0 := time.Now()
	go skynet(c, 0, n, 10)
	sum := <-c
	el := time.Since(t0)
	want := n * (n - 1) / 2
	if sum != want {
		fmt.Fprintf(os.Stderr, "skynet: wrong sum %d (want %d)\n", sum, want)
		os.Exit(1)
	}
	result(name, float64(el.Nanoseconds())/1e6, "ms")
}

func benchSkynet(n int) { runSkynet("skynet", n) }

func benchSkynet1w(n int) {
	runtime.GOMAXPROCS(1)
	runSkynet("skynet_1w", n)
}

// benchSpawnOutside: two spawner goroutines each start n/2 trivial goroutines; the
// closest Go analogue of two plain threads calling strand_spawn.
func benchSpawnOutside(n int) {
	var all, spawners sync.WaitGroup
	half := n / 2
	all.Add(2 * half)
	spawners.Add(2)
	t0 := time.Now()
	for s := 0; s < 2; s++ {
		go func() {
			for i := 0; i < half; i++ {
				go all.Done()
			}
			spawners.Done()
		}()
	}
	spawners.Wait()
	all.Wait()
	result("spawn_outside", nsPer(time.Since(t0), 2*half), "ns/spawn")
}
