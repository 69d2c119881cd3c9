package emulator

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is an Emulator served over HTTP on a local address, like
// httptest.Server. Create it with NewServer (tests) or Listen (a command);
// Close it when done.
type Server struct {
	// URL is the Clerk API base, including /v1, e.g.
	// http://127.0.0.1:43121/v1: give it to clerkapi.WithBaseURL or to the
	// official SDK's clerk.BackendConfig.URL.
	URL string
	// ControlURL is the control API base, e.g.
	// http://127.0.0.1:43121/_emulator.
	ControlURL string
	// Addr is the address listened on, e.g. 127.0.0.1:43121.
	Addr string
	// Emulator is the served emulator, for Go control calls.
	Emulator *Emulator

	srv       *http.Server
	cancel    context.CancelFunc
	serveErr  chan error
	closeOnce sync.Once
}

// NewServer starts an Emulator configured by opts on 127.0.0.1 at a free
// port. It panics if it cannot listen, as httptest.NewServer does.
func NewServer(opts ...Option) *Server {
	s, err := Listen("127.0.0.1:0", opts...)
	if err != nil {
		panic(fmt.Sprintf("emulator: %v", err))
	}
	return s
}

// Listen starts an Emulator configured by opts on addr ("host:port"; port
// 0 picks a free one; an empty host listens on all interfaces, which
// exposes the unauthenticated control API: prefer 127.0.0.1).
func Listen(addr string, opts ...Option) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return Serve(ln, New(opts...)), nil
}

// Serve serves e on ln until the Server is closed.
func Serve(ln net.Listener, e *Emulator) *Server {
	base, cancel := context.WithCancel(context.Background())
	host := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	s := &Server{
		URL:        "http://" + host + "/v1",
		ControlURL: "http://" + host + controlPrefix,
		Addr:       ln.Addr().String(),
		Emulator:   e,
		cancel:     cancel,
		serveErr:   make(chan error, 1),
		srv: &http.Server{
			Handler: e,
			// The timeouts protect the emulator from slow or stalled
			// clients; there is no write timeout, so that injected
			// latency of any length works.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			// Request contexts derive from base, so Close ends injected
			// latency at once.
			BaseContext: func(net.Listener) context.Context { return base },
			ErrorLog:    log.New(logWriter{e}, "", 0),
		},
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	return s
}

// logWriter sends net/http's own log lines to the emulator's logger.
type logWriter struct{ e *Emulator }

func (w logWriter) Write(p []byte) (int, error) {
	w.e.log.Warn().Str("source", "net/http").Msg(string(p))
	return len(p), nil
}

// Shutdown stops accepting connections, cancels injected latency and waits
// for calls in progress to finish or ctx to end, then closes every
// connection. It returns ctx's error if ctx ended first.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.cancel()
		err = s.srv.Shutdown(ctx)
		if err != nil {
			_ = s.srv.Close()
		}
		if serr := <-s.serveErr; serr != nil && err == nil {
			err = serr
		}
	})
	return err
}

// Close shuts the server down, giving calls in progress up to 5 seconds.
// It is safe to call more than once.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Shutdown(ctx)
}
