package publishcli

import (
	"cmp"
	"crypto/tls"
	"errors"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/internal/console"
	"github.com/clerkjobs/clerkjobs/internal/redact"
)

func (a *app) consoleCommand() *cobra.Command {
	var listen, tokenFile, basicFile, certFile, keyFile string
	var refresh time.Duration
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the web console: queue, workers, dead letters, replay, revoke_all",
		Long: `Serves a web console for operators until interrupted: jobs waiting and in flight,
throughput and outcomes, the workers, revoke_all jobs in progress, and the
dead-letter queue with the filters of ` + "`dlq list`" + `, each entry in full, and the
replay and purge actions of ` + "`dlq replay`" + ` and ` + "`dlq purge`" + ` (a dry run and a
confirmation first, then progress and a summary). It connects to NATS like every
other command, with the same flags and user (deploy/nats: the ops user).

Without credentials it listens only on a loopback address (127.0.0.1, ::1,
localhost) and answers only requests for such a host name. On any other address
it refuses to start unless --token-file (a bearer token; browsers sign in with it
once) or --basic-auth-file (user:password lines) is given; serve it with
--https-cert/--https-key or behind a TLS proxy then. Every state-changing request
must be a same-origin POST; every action is logged on standard error with what,
how many, and from which address.`,
		Example: `  publish console
  publish console --listen 127.0.0.1:9000
  publish console --listen :8443 --basic-auth-file /etc/clerkjobs/console.users \
      --https-cert console.crt --https-key console.key`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	envFlag(f, &listen, "listen", "127.0.0.1:8080", "address to serve on, host:port (env CONSOLE_LISTEN)", "CONSOLE_LISTEN")
	envFlag(f, &tokenFile, "token-file", "", "file holding the bearer token every request must carry (env CONSOLE_TOKEN_FILE)", "CONSOLE_TOKEN_FILE")
	envFlag(f, &basicFile, "basic-auth-file", "", "file of user:password lines for basic authentication (env CONSOLE_BASIC_AUTH_FILE)", "CONSOLE_BASIC_AUTH_FILE")
	envFlag(f, &certFile, "https-cert", "", "serve HTTPS with this certificate file (env CONSOLE_HTTPS_CERT)", "CONSOLE_HTTPS_CERT")
	envFlag(f, &keyFile, "https-key", "", "the HTTPS certificate's key file (env CONSOLE_HTTPS_KEY)", "CONSOLE_HTTPS_KEY")
	f.DurationVar(&refresh, "refresh", 2*time.Second, "how often the console reads the jobs stream and workers, and pages refresh (at least 100ms)")
	cmd.RunE = a.runE(func(cmd *cobra.Command, _ []string) error {
		if a.tenant != "" {
			// The console lists, replays and purges every tenant's dead
			// letters; run for one tenant, it would look like that
			// tenant's alone.
			return usagef("the console shows and acts on every tenant's dead letters: run it without --tenant (and CLERKJOBS_TENANT unset); `publish --tenant %s dlq …` works on that tenant's alone", a.tenant)
		}
		listen = cmp.Or(listen, "127.0.0.1:8080") // given as ""
		creds, err := console.LoadCredentials(tokenFile, basicFile)
		if err != nil {
			return usagef("%v", err)
		}
		if err := console.CheckAddress(listen, creds); err != nil {
			return usagef("%v", err)
		}
		if (certFile == "") != (keyFile == "") {
			return usagef("--https-cert and --https-key go together")
		}
		if certFile != "" {
			// Read now, not once the console listens: the server's error
			// quoted the path, which may be the key itself, pasted.
			if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = redact.FileError(pe.Path, err)
				}
				return usagef("--https-cert, --https-key: %v", err)
			}
		}
		if refresh < minRefresh {
			return usagef("--refresh %s: must be at least %s: each refresh reads the jobs stream and asks every worker", refresh, minRefresh)
		}
		topo, nc, _, err := a.jetStream()
		if err != nil {
			return err
		}
		// JSON lines for log collectors; readable lines on a terminal.
		logger := zerolog.New(a.env.Stderr).With().Timestamp().Logger()
		if a.stderrTTY() {
			logger = zerolog.New(zerolog.ConsoleWriter{Out: a.env.Stderr, TimeFormat: time.RFC3339}).With().Timestamp().Logger()
		}
		opts := []console.Option{console.WithLogger(logger), console.WithCredentials(creds), console.WithRefresh(refresh)}
		if certFile != "" {
			opts = append(opts, console.WithTLS(certFile, keyFile))
		}
		c, err := console.New(nc, topo, consoleFilter, opts...)
		if err != nil {
			return usagef("%v", err)
		}
		err = c.ListenAndServe(cmd.Context(), listen)
		switch {
		case errors.Is(err, console.ErrNeedsAuth):
			return usagef("%v", err)
		case errors.Is(err, console.ErrListen):
			// The address is taken or not this host's: not a usage error.
			return invalidf("%v", err)
		}
		return err
	})
	return cmd
}

// minRefresh bounds how often the console reads the jobs stream and asks
// the workers.
const minRefresh = 100 * time.Millisecond

// consoleFilter reads the console's filter form with the rules of the
// dlq commands' flags, so both select alike.
func consoleFilter(spec console.FilterSpec, now time.Time) (dlq.Filter, error) {
	sel := selection{ops: spec.Ops, classes: spec.Classes, codes: spec.Codes, jobIDs: spec.JobIDs, since: spec.Since, until: spec.Until}
	f, err := sel.filter(now, nil)
	var ee *exitError
	if errors.As(err, &ee) {
		err = ee.err // the message, without the exit status
	}
	return f, err
}
