// Command echo is the Go twin of bench/echo_strand.c: a TCP echo server on
// 127.0.0.1:<port>, one goroutine per connection. Driven by bench/loadgen.c.
//
// Usage: echo [PORT]. Without PORT the kernel picks a free one; either way it prints
// "LISTENING <port>" once it listens (bench/run.sh reads that line).
package main

import (
	"fmt"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	port := "0"
	switch len(os.Args) {
	case 1:
	case 2:
		port = os.Args[1]
	default:
		fmt.Fprintln(os.Stderr, "usage: echo [PORT]")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("LISTENING %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
