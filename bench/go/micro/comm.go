// Communication and timer twins: pingpong, ring, chan_1p1c, chan_2x2, mailbox_rtt,
// timer_churn. Values are int64 like the C side's 8-byte elements.
package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// benchPingpong: unbuffered round trips between two goroutines.
func benchPingpong(n int) {
	ping, pong := make(chan int64), make(chan int64)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	t0 := time.Now()
	var v int64
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	el := time.Since(t0)
	close(ping)
	if v != int64(n) {
		fmt.Fprintln(os.Stderr, "pingpong: lost a message")
		os.Exit(1)
	}
	result("pingpong", nsPer(el, n), "ns/rtt")
}

// benchRing: 10,000 goroutines in a ring, a token forwarded laps*10,000 times. A token
// value of 0 starts the stop lap (a value of -1 going round once), counted as hops
// like on the C side.
func benchRing(laps int) {
	const size = 10000
	chans := make([]chan int64, size)
	for i := range chans {
		chans[i] = make(chan int64)
	}
	var wg sync.WaitGroup
	wg.Add(size)
	for i := 0; i < size; i++ {
		in, out := chans[i], chans[(i+1)%size]
		go func() {
			defer wg.Done()
			for {
				v := <-in
				if v < 0 {
					out <- -1
					return
				}
				if v == 0 {
					out <- -1
					<-in
					return
				}
				out <- v - 1
			}
		}()
	}
	hops := int64(laps) * size
	t0 := time.Now()
	chans[0] <- hops
	wg.Wait()
	el := time.Since(t0)
	// hops+1 forwards of the token plus the stop lap of size hops.
	result("ring", nsPer(el, int(hops)+1+size), "ns/hop")
}

// chanThroughput moves n int64s through one channel of capacity 1024 with p
// producers and p consumers; returns ns per message.
func chanThroughput(n, p int) float64 {
	ch := make(chan int64, 1024)
	per := n / p
	var prod, cons sync.WaitGroup
	sums := make([]int64, p)
	prod.Add(p)
	cons.Add(p)
	t0 := time.Now()
	for i := 0; i < p; i++ {
		go func() {
			for j := 0; j < per; j++ {
				ch <- int64(j)
			}
			prod.Done()
		}()
		go func(i int) {
			var s int64
			for j := 0; j < per; j++ {
				s += <-ch
			}
			sums[i] = s
			cons.Done()
		}(i)
	}
	prod.Wait()
	cons.Wait()
	return nsPer(time.Since(t0), per*p)
}

func benchChan1p1c(n int) { result("chan_1p1c", chanThroughput(n, 1), "ns/msg") }
func benchChan2x2(n int)  { result("chan_2x2", chanThroughput(n, 2), "ns/msg") }

// benchMailboxRtt: Go has no mailboxes; each goroutine's inbox is a buffered channel
// (an asynchronous queue, like a strand mailbox) and a message carries its sender.
type msg struct {
	from  chan msg
	value int64
}

func benchMailboxRtt(n int) {
	a, b := make(chan msg, 64), make(chan msg, 64)
	go func() {
		for m := range b {
			m.from <- msg{b, m.value + 1}
		}
	}()
	t0 := time.Now()
	var v int64
	for i := 0; i < n; i++ {
		b <- msg{a, v}
		v = (<-a).value
	}
	el := time.Since(t0)
	close(b)
	if v != int64(n) {
		fmt.Fprintln(os.Stderr, "mailbox_rtt: lost a message")
		os.Exit(1)
	}
	result("mailbox_rtt", nsPer(el, n), "ns/rtt")
}

// benchTimerChurn: n sleeps of pseudo-random length in [0,100) µs over 10,000
// goroutines; the same xorshift sequence as the C side.
func benchTimerChurn(n int) {
	const workers = 10000
	per := n / workers
	var wg sync.WaitGroup
	wg.Add(workers)
	t0 := time.Now()
	for i := 0; i < workers; i++ {
		go func(seed uint64) {
			x := seed*0x9E3779B97F4A7C15 | 1
			for j := 0; j < per; j++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				time.Sleep(time.Duration(x%100000) * time.Nanosecond)
			}
			wg.Done()
		}(uint64(i + 1))
	}
	wg.Wait()
	result("timer_churn", float64(time.Since(t0).Nanoseconds())/1e6, "ms")
}
