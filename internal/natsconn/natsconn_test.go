package natsconn

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/embedded"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		o    Options
		want string // substring of the error, "" for none
	}{
		{"zero", Options{}, ""},
		{"host:port", Options{URL: "127.0.0.1:4222"}, ""},
		{"list", Options{URL: "nats://a:4222, nats://b:4222"}, ""},
		{"user and password", Options{User: "u", Password: "p"}, ""},
		{"creds", Options{Creds: file}, ""},
		{"two methods", Options{Creds: file, User: "u"}, "choose one way"},
		{"password alone", Options{Password: "p"}, "without a user"},
		{"cert without key", Options{TLSCert: file}, "both the certificate and its key"},
		{"missing creds", Options{Creds: missing}, "credentials file"},
		{"missing CA", Options{TLSCA: missing}, "TLS CA file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cret@h:4222", "nats://alice:xxxxx@h:4222"},
		{"nats://tok3n@h:4222", "nats://xxxxx@h:4222"},
		{"nats://a:4222,nats://bob:pw@b:4222", "nats://a:4222,nats://bob:xxxxx@b:4222"},
		{"bob:pw@b:4222", "nats://bob:xxxxx@b:4222"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(Redact(tt.in), "s3cret") || strings.Contains(Redact(tt.in), "tok3n") {
			t.Errorf("Redact(%q) leaks a secret", tt.in)
		}
	}
}

func TestConnect(t *testing.T) {
	s, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nc, err := Options{URL: s.ClientURL(), Name: "natsconn-test"}.Connect()
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	nc.Close()

	// Nothing listens on port 1: the error names the URL, hides the
	// password, and says the server was not reached.
	_, err = Options{URL: "nats://bob:s3cret@127.0.0.1:1"}.Connect()
	var ce *ConnectError
	if !errors.As(err, &ce) || !ce.Refused() {
		t.Fatalf("Connect to a closed port = %v, want a refused *ConnectError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1") || strings.Contains(msg, "s3cret") {
		t.Fatalf("error %q: want the URL without the password", msg)
	}
}
