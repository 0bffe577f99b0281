// Command http is the Go twin of examples/http_server.c: net/http on 127.0.0.1:<port>
// serving the same two routes with the same bodies ("Hello, World!" as text/plain and
// {"message":"Hello, World!"} as application/json). Driven by wrk from bench/run.sh.
//
//	http --port 0     (0: the kernel picks; prints "listening on 127.0.0.1:PORT")
//
// SIGTERM stops it gracefully (Server.Shutdown), as the C server does.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

var (
	hello = []byte("Hello, World!")
	json  = []byte(`{"message":"Hello, World!"}`)
)

// reply writes body with the given type for GET and HEAD, 405 for other methods.
func reply(w http.ResponseWriter, r *http.Request, typ string, body []byte) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{typ}
	h["Server"] = []string{"go"}
	w.Write(body)
}

func main() {
	port := flag.Int("port", 8080, "port on 127.0.0.1 (0: the kernel picks)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" { // "/" is the catch-all pattern in ServeMux
			http.NotFound(w, r)
			return
		}
		reply(w, r, "text/plain; charset=utf-8", hello)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		reply(w, r, "application/json", json)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
