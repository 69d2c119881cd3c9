package nats_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// pki is a throwaway CA and the files it signed, made per test: no key is
// ever committed.
type pki struct {
	dir          string
	ca           *x509.Certificate
	caKey        *ecdsa.PrivateKey
	caFile       string
	serverCert   string
	serverKey    string
	clientCert   string
	clientKey    string
	otherCAFile  string
	strangerCert string
	strangerKey  string
	serial       int64
	otherCA      *x509.Certificate
	otherCAKey   *ecdsa.PrivateKey
	serverNames  []string
	serverIPs    []net.IP
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), serverNames: []string{"localhost"}, serverIPs: []net.IP{net.ParseIP("127.0.0.1")}}
	p.ca, p.caKey, p.caFile = p.newCA(t, "clerkjobs test CA")
	p.otherCA, p.otherCAKey, p.otherCAFile = p.newCA(t, "some other CA")
	p.serverCert, p.serverKey = p.issue(t, p.ca, p.caKey, "server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = p.issue(t, p.ca, p.caKey, "client", x509.ExtKeyUsageClientAuth)
	p.strangerCert, p.strangerKey = p.issue(t, p.otherCA, p.otherCAKey, "stranger", x509.ExtKeyUsageClientAuth)
	return p
}

func (p *pki) template(cn string) *x509.Certificate {
	p.serial++
	return &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
}

func (p *pki) newCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := p.template(cn)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := p.write(t, strings.ReplaceAll(cn, " ", "-")+".pem", "CERTIFICATE", der)
	return cert, key, file
}

func (p *pki) issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := p.template(name)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames, tmpl.IPAddresses = p.serverNames, p.serverIPs
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+"-cert.pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// tls.conf: clients need the CA to trust the server, a certificate of
// their own, and still their user and password.
func TestTLSExample(t *testing.T) {
	pw := testenv.DeployPasswords(t)
	p := newPKI(t)
	t.Setenv("NATS_TLS_CERT", p.serverCert)
	t.Setenv("NATS_TLS_KEY", p.serverKey)
	t.Setenv("NATS_TLS_CA", p.caFile)
	s := testenv.StartConfiguredServer(t, "tls.conf")
	url := strings.Replace(s.ClientURL(), "nats://", "tls://", 1)

	tests := []struct {
		name string
		opts natsconn.Options
		// wantErr is part of the error expected; "-" is any error (the
		// client words a handshake the server cut short in several ways).
		wantErr string
	}{
		{"CA, client certificate and password", natsconn.Options{TLSCA: p.caFile, TLSCert: p.clientCert, TLSKey: p.clientKey, User: "ops", Password: pw["ops"]}, ""},
		{"no client certificate", natsconn.Options{TLSCA: p.caFile, User: "ops", Password: pw["ops"]}, "-"},
		{"client certificate from another CA", natsconn.Options{TLSCA: p.caFile, TLSCert: p.strangerCert, TLSKey: p.strangerKey, User: "ops", Password: pw["ops"]}, "-"},
		{"server not trusted", natsconn.Options{TLSCA: p.otherCAFile, TLSCert: p.clientCert, TLSKey: p.clientKey, User: "ops", Password: pw["ops"]}, "certificate signed by unknown authority"},
		{"system roots only", natsconn.Options{TLSCert: p.clientCert, TLSKey: p.clientKey, User: "ops", Password: pw["ops"]}, "certificate signed by unknown authority"},
		{"certificate without password", natsconn.Options{TLSCA: p.caFile, TLSCert: p.clientCert, TLSKey: p.clientKey}, "Authorization Violation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.URL, o.Timeout = url, 2*time.Second
			nc, err := o.Connect()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				defer nc.Close()
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
				if st, err := nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
					t.Fatalf("TLS state: %v", err)
				}
				return
			}
			if err == nil {
				nc.Close()
				t.Fatalf("connected; want an error mentioning %q", tt.wantErr)
			}
			if tt.wantErr != "-" && !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
				t.Errorf("connect = %v; want it to mention %q", err, tt.wantErr)
			}
		})
	}
}
