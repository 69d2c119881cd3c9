package console_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestSecurityHeaders: every answer (a page, a refusal, a redirect, a
// static file) carries Cross-Origin-Opener-Policy, so no window opened from
// another site keeps a handle on the console's; Strict-Transport-Security
// only when the console serves HTTPS itself.
func TestSecurityHeaders(t *testing.T) {
	env := testenv.New(t)
	cert, key, pool := selfSigned(t)
	for _, tc := range []struct {
		name string
		args []string
		hsts string
	}{
		{"HTTP", nil, ""},
		{"HTTPS", []string{"--https-cert", cert, "--https-key", key}, "max-age=31536000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			con := startConsole(t, env.NATSURL, tc.args...)
			client := &http.Client{
				Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			for _, path := range []string{"/", "/dlq", "/static/console.css", "/no-such-page", "/login"} {
				resp, err := client.Get(con.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := resp.Header.Get("Cross-Origin-Opener-Policy"); got != "same-origin" {
					t.Errorf("GET %s (%d): Cross-Origin-Opener-Policy %q, want same-origin", path, resp.StatusCode, got)
				}
				if got := resp.Header.Get("Strict-Transport-Security"); got != tc.hsts {
					t.Errorf("GET %s (%d): Strict-Transport-Security %q, want %q", path, resp.StatusCode, got, tc.hsts)
				}
			}
		})
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "console test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "console.crt"), filepath.Join(dir, "console.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}
