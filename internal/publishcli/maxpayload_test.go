package publishcli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/publishcli"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// TestBatchLineOverMaxPayload: a batch line over the NATS server's
// max_payload was reported as the bare "nats: maximum payload exceeded",
// exit 4 (NATS unavailable) when it was the first, with a command to
// continue that sent the same line again and stopped there again. A single
// job that size exits 2, saying why.
func TestBatchLineOverMaxPayload(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(conf, []byte("jetstream: {}\nmax_payload: 2KB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testenv.StartConfiguredServer(t, conf)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo := jobs.DefaultTopology()
	if _, err := topo.Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	h := &harness{url: s.ClientURL(), nc: nc, js: js, topo: topo}
	var except []string
	for i := range 100 {
		except = append(except, fmt.Sprintf(`"sess_%022d"`, i))
	}
	big := `{"user_id":"user_big","except_session_ids":[` + strings.Join(except, ",") + `]}` + "\n"
	small := `{"user_id":"user_small"}` + "\n"
	// Under max_payload alone, over it with the headers the job is sent
	// with (Nats-Msg-Id and the others).
	edge := `{"user_id":"user_edge","except_session_ids":[` + strings.Join(except[:65], ",") + `]}` + "\n"
	for _, tc := range []struct {
		name  string
		lines string
		code  int
		line  int
	}{
		{"first line", big + small, publishcli.ExitUsage, 1},
		{"after an accepted one", small + big, publishcli.ExitPartial, 2},
		{"over only with its headers", edge + small, publishcli.ExitUsage, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "batch.ndjson", tc.lines)
			r := h.run(t, "revoke-all", "--file", file)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tc.code, r)
			}
			// The command line was right: pointing at --help misleads.
			if strings.Contains(r.stderr, "--help' for usage") {
				t.Errorf("a job too big is no usage error, yet --help is pointed at\n%s", r)
			}
			for _, want := range []string{fmt.Sprintf("the job of line %d", tc.line), "max_payload 2048 bytes", "would be refused again as it is",
				fmt.Sprintf("raise max_payload (the server's, or the account's) to %d", jobs.MaxJobMessageBytes)} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q\n%s", want, r)
				}
			}
			// The sizes it gives add up to more than the limit: a body
			// said to be over it, of fewer bytes than it, reads as a bug.
			m := regexp.MustCompile(`a body of (\d+) bytes and headers of about (\d+)`).FindStringSubmatch(r.stderr)
			if m == nil {
				t.Fatalf("stderr does not give the body's and the headers' sizes\n%s", r)
			}
			body, _ := strconv.Atoi(m[1])
			hdrs, _ := strconv.Atoi(m[2])
			if body+hdrs <= 2048 {
				t.Errorf("body %d + headers %d bytes: not over max_payload 2048\n%s", body, hdrs, r)
			}
		})
	}
}
