package console_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
)

// TestRefusalsAreLoggedWithinBounds: what the console logs about a request
// it refuses comes from whoever sent it, before any sign-in. Each field is
// bounded, so that anyone who can reach the port cannot
// write a megabyte into the operators' logs per request.
func TestRefusalsAreLoggedWithinBounds(t *testing.T) {
	env := testenv.New(t)
	long := strings.Repeat("A", 200<<10)
	signedIn := onAllInterfaces(t, env.NATSURL, "--token-file", secretFile(t, "token", goodToken+"\n"))
	open := startConsole(t, env.NATSURL)

	tests := []struct {
		name    string
		con     *running
		method  string
		path    string
		headers map[string]string
		want    string // the log line's message
	}{
		{name: "unauthenticated, long path", con: signedIn, method: http.MethodGet, path: "/dlq/" + long,
			want: "refused an unauthenticated request"},
		{name: "cross-site fetch", con: open, method: http.MethodGet, path: "/dlq/" + long,
			headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": long}, want: "refused a cross-origin request"},
		{name: "cross-origin post", con: open, method: http.MethodPost, path: "/dlq/plan",
			headers: map[string]string{"Origin": "https://" + long, "Sec-Fetch-Site": "same-site"}, want: "refused a cross-origin request"},
		{name: "host that is not loopback", con: open, method: http.MethodGet, path: "/",
			headers: map[string]string{"Host": "evil." + long}, want: "host name that is not loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.con.Logs.String())
			req, err := http.NewRequest(tt.method, tt.con.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("status %d, want a refusal", resp.StatusCode)
			}
			logged := tt.con.Logs.String()[before:]
			found := false
			sc := bufio.NewScanner(strings.NewReader(logged))
			sc.Buffer(nil, 4<<20)
			for sc.Scan() {
				line := sc.Text()
				if len(line) > 4<<10 {
					t.Errorf("a log line of %d bytes: %.200s…", len(line), line)
				}
				found = found || strings.Contains(line, tt.want)
			}
			if !found {
				t.Errorf("no log line says %q:\n%.2000s", tt.want, logged)
			}
		})
	}
}
