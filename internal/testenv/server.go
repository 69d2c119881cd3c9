package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
