package main

import (
	"fmt"
	"os"
	"time"
)

// benchSelect2: two 1-slot buffered channels, each holding a value; select a receive on
// both (both ready) and put the value back where it came from, as bench/select.c.
func benchSelect2(n int) {
	a, b := make(chan int64, 1), make(chan int64, 1)
	a <- 1
	b <- 1
	var hits [2]int
	t0 := time.Now()
	for i := 0; i < n; i++ {
		select {
		case v := <-a:
			hits[0]++
			a <- v
		case v := <-b:
			hits[1]++
			b <- v
		}
	}
	el := time.Since(t0)
	if hits[0] == 0 || hits[1] == 0 {
		fmt.Fprintln(os.Stderr, "select2: one case never chosen")
		os.Exit(1)
	}
	result("select2", nsPer(el, n), "ns/select")
}

// benchSelectFanin8: 8 goroutines each send n/8 values on their own unbuffered channel;
// one goroutine takes them all with an 8-case select.
func benchSelectFanin8(n int) {
	const fanin = 8
	per := n / fanin
	var c [fanin]chan int64
	for i := range c {
		c[i] = make(chan int64)
	}
	t0 := time.Now()
	for i := range c {
		go func(ch chan int64) {
			for j := int64(1); j <= int64(per); j++ {
				ch <- j
			}
		}(c[i])
	}
	var sum int64
	for i := 0; i < per*fanin; i++ {
		var v int64
		select {
		case v = <-c[0]:
		case v = <-c[1]:
		case v = <-c[2]:
		case v = <-c[3]:
		case v = <-c[4]:
		case v = <-c[5]:
		case v = <-c[6]:
		case v = <-c[7]:
		}
		sum += v
	}
	el := time.Since(t0)
	if sum != int64(fanin)*int64(per)*int64(per+1)/2 {
		fmt.Fprintln(os.Stderr, "select_fanin8: wrong sum")
		os.Exit(1)
	}
	result("select_fanin8", nsPer(el, per*fanin), "ns/msg")
}
