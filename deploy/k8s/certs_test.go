package k8s_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// runCerts runs certs.sh as deploy/README.md does, with args.
func runCerts(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("certs.sh needs openssl (Debian: apt-get install openssl)")
	}
	out, err := exec.Command("sh", append([]string{"certs.sh"}, args...)...).CombinedOutput()
	return string(out), err
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c
}

// TestCertsScript: the certificate certs.sh makes is what the chart's
// values need. It verifies with the CA for the client Service and every
// pod of the headless Service (the routes' URLs), serves as a client
// certificate too (routes present it: verify), and a NATS server serves it
// to a client that knows only the CA. A second run keeps the CA.
func TestCertsScript(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if out, err := runCerts(t, "clerkjobs", "nats", dir); err != nil {
		t.Fatalf("certs.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"ca.key", "tls.key"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, mode %v; want it readable by its owner alone", f, err, fi.Mode())
		}
	}
	ca, leaf := readCert(t, filepath.Join(dir, "ca.crt")), readCert(t, filepath.Join(dir, "tls.crt"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	names := []string{
		"nats", "nats.clerkjobs", "nats.clerkjobs.svc", "nats.clerkjobs.svc.cluster.local",
		"nats-0.nats-headless", "nats-2.nats-headless.clerkjobs.svc.cluster.local",
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		for _, name := range names {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("as %v for %s: %v", usage, name, err)
			}
		}
	}
	for _, name := range []string{"nats.other", "evil.example.com", "nats-0.nats-headless.other.svc.cluster.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err == nil {
			t.Errorf("verifies for %s, another name than the release's", name)
		}
	}
	if days := time.Until(leaf.NotAfter).Hours() / 24; days < 800 || days > 830 {
		t.Errorf("tls.crt expires in %.0f days, want the 825 deploy/README.md says", days)
	}

	t.Run("a NATS server serves it", func(t *testing.T) {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")})
		if err != nil {
			t.Fatal(err)
		}
		s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, TLSConfig: tc, TLS: true})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		defer s.Shutdown()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("NATS did not start")
		}
		// The worker's URL names the Service "nats"; here it is reached by
		// address, so the name goes in the TLS configuration.
		nc, err := nats.Connect(strings.Replace(s.ClientURL(), "nats://", "tls://", 1), nats.Secure(&tls.Config{ServerName: "nats", RootCAs: roots, MinVersion: tls.VersionTLS12}))
		if err != nil {
			t.Fatalf("connect with only the CA: %v", err)
		}
		nc.Close()
	})

	t.Run("a second run keeps the CA", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
		if out, err := runCerts(t, "clerkjobs", "nats", dir); err != nil {
			t.Fatalf("certs.sh: %v\n%s", err, out)
		}
		after, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
		if !bytes.Equal(before, after) {
			t.Error("the CA changed: every client's ca.crt would have to change with it")
		}
		if _, err := readCert(t, filepath.Join(dir, "tls.crt")).Verify(x509.VerifyOptions{DNSName: "nats", Roots: roots}); err != nil {
			t.Errorf("the new certificate: %v", err)
		}
	})

	t.Run("names that are not Kubernetes names", func(t *testing.T) {
		for _, args := range [][]string{{""}, {"Default"}, {"ns", "a.b"}, {"ns", "-x"}, {"a b"}} {
			out, err := runCerts(t, append(args, filepath.Join(t.TempDir(), "x"))...)
			if err == nil || !strings.Contains(out, "not a Kubernetes name") && !strings.Contains(out, "usage") {
				t.Errorf("certs.sh %q: %v, %q; want a refusal that names the problem", args, err, out)
			}
		}
	})
}
