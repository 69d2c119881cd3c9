package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// StartConfiguredServer runs a NATS server configured by file (such as
// deploy/nats/server.conf), on a random local port, with its JetStream
// files in a temporary directory and no monitoring port. It is shut down
// at cleanup.
func StartConfiguredServer(t testing.TB, file string) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("%s: server not ready", file)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// ConnectWithMaxPayload connects to a NATS server of its own (JetStream
// on) that takes at most size (as the server's configuration writes it:
// "16KB") in one message. Both are closed at cleanup.
func ConnectWithMaxPayload(t testing.TB, size string) *nats.Conn {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(conf, []byte("jetstream: {}\nmax_payload: "+size+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := StartConfiguredServer(t, conf)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// DeployPasswords puts a fresh password for each user of
// deploy/nats/accounts.conf (worker, svc_a, svc_b, ops) in the environment
// variable the file reads it from (CLERKJOBS_SVC_A_PASSWORD), and returns
// them by user name.
func DeployPasswords(t testing.TB) map[string]string {
	t.Helper()
	pw := map[string]string{}
	for _, u := range []string{"worker", "svc_a", "svc_b", "ops"} {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		pw[u] = "p" + hex.EncodeToString(b)
		t.Setenv("CLERKJOBS_"+strings.ToUpper(u)+"_PASSWORD", pw[u])
	}
	return pw
}

// StartLimitedServer runs a NATS server with JetStream and two users, on
// a random local port: admin, who may do anything, and worker, whose
// permissions are the given NATS configuration block, such as
// `{publish: {deny: ["$JS.API.STREAM.NAMES"]}}`. Each user's password is
// its name. It is shut down at cleanup.
func StartLimitedServer(t testing.TB, workerPermissions string) *server.Server {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(conf, []byte(`jetstream: {}
authorization {
  users: [
    {user: admin, password: admin}
    {user: worker, password: worker, permissions: `+workerPermissions+`}
  ]
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return StartConfiguredServer(t, conf)
}

// ConnectAs connects to a StartLimitedServer as user; the connection is
// closed at cleanup. Its asynchronous errors are not printed: the
// refusals a limited user meets are what the tests are about.
func ConnectAs(t testing.TB, s *server.Server, user string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, user), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
