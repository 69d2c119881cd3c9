// Package embedded runs a NATS server with JetStream inside the current
// process: the worker's zero-configuration default, and the server every
// fast test runs against (StartTest).
package embedded

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configure an embedded server.
type Options struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string
	// StoreDir holds JetStream's files. Required: file storage is what
	// survives a restart.
	StoreDir string
	// ServerName names the server in JetStream; defaults to "embedded".
	ServerName string
	// MaxStore caps JetStream file storage in bytes (0: server default).
	MaxStore int64
	// Logger receives the server's log; nil keeps it quiet.
	Logger server.Logger
}

// Start starts a server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded NATS: a JetStream store directory is required")
	}
	// Said now, not as a server that never gets ready "within 10s (is the
	// port in use?)": a store directory that is a file, or not writable.
	if err := os.MkdirAll(o.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded NATS: JetStream store directory %q cannot be made: %w", o.StoreDir, err)
	}
	// Two servers on one store directory (a second worker started with
	// the same data directory) each write the other's stream files, and
	// nats-server does not stop them: jobs, results and dead letters would
	// be lost. The lock is held until the server shuts down, and let go
	// just after (see below): a server of this process shut down a moment
	// ago is waited for, a second at most.
	lock, err := lockDir(o.StoreDir)
	for deadline := time.Now().Add(time.Second); errors.Is(err, errDirInUse) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		lock, err = lockDir(o.StoreDir)
	}
	if errors.Is(err, errDirInUse) {
		return nil, fmt.Errorf("embedded NATS: JetStream store directory %q is in use by another embedded server (another worker's?): two servers on one directory corrupt each other's streams; stop that one, or give this one a directory of its own", o.StoreDir)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: JetStream store directory %q cannot be locked: %w", o.StoreDir, err)
	}
	started := false
	defer func() {
		if !started {
			lock.Close()
		}
	}()
	host, portStr, err := net.SplitHostPort(o.Addr)
	if o.Addr == "" {
		host, portStr, err = "127.0.0.1", "-1", nil
	}
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: listen address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := o.ServerName
	if name == "" {
		name = "embedded"
	}
	opts := &server.Options{
		ServerName:            name,
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              o.StoreDir,
		JetStreamMaxStore:     o.MaxStore,
		NoSigs:                true,
		NoLog:                 o.Logger == nil,
		MaxPayload:            1 << 20,
		WriteDeadline:         10 * time.Second,
		DisableShortFirstPing: true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if o.Logger != nil {
		s.SetLogger(o.Logger, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not ready to accept connections on %s within 10s (is the port in use?)", net.JoinHostPort(host, portStr))
	}
	started = true
	go func() {
		s.WaitForShutdown()
		lock.Close()
	}()
	return s, nil
}

// errDirInUse: another process holds a store directory's lock.
var errDirInUse = errors.New("store directory in use")

// lockPath is the file whose lock marks a store directory in use.
func lockPath(dir string) string { return filepath.Join(dir, "embedded.lock") }

// Connected is a running server with a connection to it and JetStream.
type Connected struct {
	Server    *server.Server
	URL       string
	Conn      *nats.Conn
	JetStream jetstream.JetStream
}

// StartConnected starts a server, connects to it and opens JetStream. Close
// stops both.
func StartConnected(o Options) (*Connected, error) {
	s, err := Start(o)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS: JetStream: %w", err)
	}
	return &Connected{Server: s, URL: s.ClientURL(), Conn: nc, JetStream: js}, nil
}

// Close closes the connection and shuts the server down.
func (c *Connected) Close() {
	c.Conn.Close()
	c.Server.Shutdown()
}

// StartTest starts a server for one test (a free local port, its files in
// t.TempDir) with a connection to it; t.Cleanup closes them. Every test
// server of the repository comes from here.
func StartTest(t testing.TB) *Connected {
	t.Helper()
	c, err := StartConnected(Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
