package onceflag_test

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs/internal/onceflag"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error; "" for none
	}{
		{"each once", []string{"--user", "A", "--limit", "5", "--wait"}, ""},
		{"string twice", []string{"--user", "A", "--user", "B"}, "--user given more than once"},
		{"string twice, = form", []string{"--user=A", "--user=B"}, "--user given more than once"},
		{"same value twice", []string{"--user", "A", "--user", "A"}, ""},
		{"int twice", []string{"--limit", "5", "--limit", "6"}, "--limit given more than once"},
		{"duration twice", []string{"--timeout", "1s", "--timeout", "2s"}, "--timeout given more than once"},
		{"bool contradicted", []string{"--wait", "--wait=false"}, "--wait given more than once"},
		{"bool twice", []string{"--wait", "--wait"}, ""},
		// The same value spelled two ways is no contradiction: a script
		// adding --wait=1 to a line that has --wait, 60s beside 1m.
		{"bool spelled two ways", []string{"--wait=1", "--wait"}, ""},
		{"duration spelled two ways", []string{"--timeout", "60s", "--timeout=1m"}, ""},
		{"int spelled two ways", []string{"--limit", "05", "--limit", "5"}, ""},
		{"two flags twice, named in order", []string{"--user", "A", "--limit", "1", "--user", "B", "--limit", "2"}, "--limit, --user given more than once"},
		{"string slice repeats", []string{"--except", "a", "--except", "b,c"}, ""},
		{"string array repeats", []string{"--tag", "a", "--tag", "b"}, ""},
		{"int slice repeats", []string{"--concurrency", "1", "--concurrency", "16"}, ""},
		{"map repeats", []string{"--label", "a=1", "--label", "b=2"}, ""},
		{"counter repeats", []string{"-v", "-v"}, ""},
		// Two names bound to one variable (natsconn's deprecated --server
		// beside --nats-url) are one setting: `--server A --nats-url B`
		// kept B unsaid, as a flag given twice did.
		{"old and new name, different", []string{"--server", "nats://a:4222", "--nats-url", "nats://b:4222"}, "--nats-url, --server given more than once"},
		{"old and new name, same", []string{"--server", "nats://a:4222", "--nats-url=nats://a:4222"}, ""},
		{"new name alone", []string{"--nats-url", "nats://b:4222"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			user := fs.String("user", "", "")
			limit := fs.Int("limit", 0, "")
			fs.Duration("timeout", time.Second, "")
			fs.Bool("wait", false, "")
			fs.StringSlice("except", nil, "")
			fs.StringArray("tag", nil, "")
			fs.IntSlice("concurrency", nil, "")
			fs.StringToString("label", nil, "")
			fs.CountP("verbose", "v", "")
			var url string
			fs.StringVar(&url, "nats-url", "", "")
			fs.StringVar(&url, "server", "", "")
			onceflag.Watch(fs)
			onceflag.Watch(fs) // watching twice wraps once
			if err := fs.Parse(tt.args); err != nil {
				t.Fatalf("parse: %v", err)
			}
			err := onceflag.Check(fs)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check: %v, want an error saying %q", err, tt.want)
			case err != nil && (strings.Contains(err.Error(), "B") || strings.Contains(err.Error(), "6") || strings.Contains(err.Error(), "nats://")):
				t.Errorf("the error repeats a value: %v", err)
			}
			// The flags still take their values as pflag gives them.
			if tt.name == "string twice" && *user != "B" || tt.name == "each once" && *limit != 5 {
				t.Errorf("user %q, limit %d: the watched values were not set", *user, *limit)
			}
			if got, _ := fs.GetInt("limit"); got != *limit {
				t.Errorf("GetInt through the watch = %d, want %d", got, *limit)
			}
		})
	}
}
