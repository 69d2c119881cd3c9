package publishcli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs/internal/fileread"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// jobSpec describes one job subcommand: how its flags become a JSON body.
type jobSpec struct {
	op                   jobs.Op
	use, short, long, ex string
	// positional names the field an optional positional argument fills.
	positional string
	// define adds the op's flags; body reads them into JSON fields (only
	// the flags given).
	define func(fs *pflag.FlagSet)
	body   func(fs *pflag.FlagSet) (map[string]any, error)
	// fieldFlags names the flag of each JSON field, for error messages.
	fieldFlags map[string]string
}

// ownGiven returns the op's flags (not the ones every job command has)
// given in fs, as "--name".
func (s jobSpec) ownGiven(fs *pflag.FlagSet) []string {
	own := pflag.NewFlagSet("", pflag.ContinueOnError)
	s.define(own)
	var given []string
	own.VisitAll(func(f *pflag.Flag) {
		if fs.Changed(f.Name) {
			given = append(given, "--"+f.Name)
		}
	})
	return given
}

// given reads the flags given into JSON fields: pairs of flag and field.
func given(fs *pflag.FlagSet, pairs ...string) map[string]any {
	out := map[string]any{}
	for i := 0; i < len(pairs); i += 2 {
		flag, field := pairs[i], pairs[i+1]
		switch f := fs.Lookup(flag); {
		case f == nil || !f.Changed:
		case f.Value.Type() == "int":
			out[field], _ = fs.GetInt(flag) // the flag parsed it already
		case f.Value.Type() == "bool":
			out[field], _ = fs.GetBool(flag)
		default:
			out[field] = f.Value.String()
		}
	}
	return out
}

const sessionHelp = "session id (sess_...); or give it as the argument"

func (a *app) specs() []jobSpec {
	session := func(fs *pflag.FlagSet) { fs.String("session", "", sessionHelp) }
	sessionBody := func(fs *pflag.FlagSet) (map[string]any, error) {
		return given(fs, "session", "session_id"), nil
	}
	sessionFields := map[string]string{"session_id": "--session (or the SESSION argument)"}
	return []jobSpec{
		{
			op: jobs.OpList, use: "list", short: "List a user's or a client's sessions",
			long: "Publishes a sessions.list job (Clerk GetSessionList): the sessions of a user or of a client.",
			ex: `  publish list --user user_2abc --status active --wait
  publish list --client client_2abc --limit 100 --paginated --wait --json`,
			define: func(fs *pflag.FlagSet) {
				fs.String("user", "", "user id (user_...)")
				fs.String("client", "", "client id (client_...)")
				fs.String("status", "", "only sessions in this status: abandoned, active, ended, expired, removed, replaced, revoked")
				fs.Int("limit", 0, "page size, 1 to 500 (Clerk's default is 10)")
				fs.Int("offset", 0, "skip this many sessions")
				fs.Bool("paginated", false, "ask for the total count too")
			},
			body: func(fs *pflag.FlagSet) (map[string]any, error) {
				return given(fs, "user", "user_id", "client", "client_id", "status", "status",
					"limit", "limit", "offset", "offset", "paginated", "paginated"), nil
			},
			fieldFlags: map[string]string{"user_id": "--user", "client_id": "--client", "status": "--status", "limit": "--limit", "offset": "--offset", "": "--user or --client"},
		},
		{
			op: jobs.OpCreate, use: "create", short: "Create a session for a user (Clerk testing instances only)",
			long: "Publishes a sessions.create job (Clerk createSession). Clerk allows it on testing instances only.",
			ex:   `  publish create --user user_2abc --wait`,
			define: func(fs *pflag.FlagSet) {
				fs.String("user", "", "user id (user_...)")
				fs.String("org", "", "active organization id (org_...)")
			},
			body: func(fs *pflag.FlagSet) (map[string]any, error) {
				return given(fs, "user", "user_id", "org", "active_organization_id"), nil
			},
			fieldFlags: map[string]string{"user_id": "--user", "active_organization_id": "--org"},
		},
		{
			op: jobs.OpGet, use: "get [SESSION]", short: "Retrieve a session",
			long:       "Publishes a sessions.get job (Clerk GetSession).",
			ex:         `  publish get sess_2abc --wait`,
			positional: "session_id", define: session, body: sessionBody, fieldFlags: sessionFields,
		},
		{
			op: jobs.OpRevoke, use: "revoke [SESSION]", short: "Revoke a session",
			long: `Publishes a sessions.revoke job (Clerk RevokeSession). Revoking a session that is no
longer active succeeds (the result says already_revoked).`,
			ex: `  publish revoke sess_2abc
  publish revoke --session sess_2abc --job-id incident-42-sess_2abc --wait
  publish revoke --file sessions.ndjson      # one {"session_id":"sess_..."} per line`,
			positional: "session_id", define: session, body: sessionBody, fieldFlags: sessionFields,
		},
		{
			op: jobs.OpToken, use: "token [SESSION]", short: "Create a session token (needs --wait)",
			long: `Publishes a sessions.token.request job (Clerk CreateSessionToken, or
CreateSessionTokenFromTemplate with --template). The token is sent only to the
job's reply subject: use --wait to receive it here. It is printed on standard
output and nowhere else.`,
			ex: `  publish token sess_2abc --wait
  publish token sess_2abc --template hasura --expires-in 5m --wait --json`,
			positional: "session_id",
			define: func(fs *pflag.FlagSet) {
				fs.String("session", "", sessionHelp)
				fs.String("template", "", "JWT template name")
				fs.String("expires-in", "", "token lifetime: a duration (90s, 10m) or seconds; 30s to 10 years")
			},
			body: func(fs *pflag.FlagSet) (map[string]any, error) {
				out := given(fs, "session", "session_id", "template", "template_name")
				if fs.Changed("expires-in") {
					v, _ := fs.GetString("expires-in")
					secs, err := parseSeconds(v)
					if err != nil {
						return nil, usagef("--expires-in %q: %v", v, err)
					}
					out["expires_in_seconds"] = secs
				}
				return out, nil
			},
			fieldFlags: map[string]string{"session_id": "--session (or the SESSION argument)", "template_name": "--template", "expires_in_seconds": "--expires-in", "reply_to": "--wait"},
		},
		{
			op: jobs.OpRefresh, use: "refresh [SESSION]", short: "Refresh a session (needs --wait)",
			long: `Publishes a sessions.refresh job (Clerk RefreshSession). The answer (a token or
cookies) is sent only to the job's reply subject: use --wait to receive it here.

The expired token, the refresh token and the request headers are secrets, so they
are read from files ("-" for standard input), never from arguments, which other
users of the machine can see. Or pass the whole job as JSON with --file.`,
			ex: `  publish refresh sess_2abc --origin https://app.example.com \
      --expired-token-file jwt.txt --refresh-token-file refresh.txt --wait
  publish refresh --file refresh.json --wait`,
			positional: "session_id",
			define: func(fs *pflag.FlagSet) {
				fs.String("session", "", sessionHelp)
				fs.String("origin", "", "the request's origin (request_origin)")
				fs.String("expired-token-file", "", "file holding the expired session token (- for standard input)")
				fs.String("refresh-token-file", "", "file holding the refresh token (- for standard input)")
				fs.String("headers-file", "", "file holding the request headers as a JSON object")
				fs.String("format", "", "answer format: token or cookie")
				fs.String("ip", "", "the request's originating IP address")
			},
			body: func(fs *pflag.FlagSet) (map[string]any, error) {
				out := given(fs, "session", "session_id", "origin", "request_origin", "format", "format", "ip", "request_originating_ip")
				var stdin []string
				for _, f := range []string{"expired-token-file", "refresh-token-file", "headers-file"} {
					if path, _ := fs.GetString(f); fs.Changed(f) && path == "-" {
						stdin = append(stdin, "--"+f)
					}
				}
				if len(stdin) > 1 {
					// The first would read it all, the next nothing.
					return nil, usagef("%s all read standard input (-): only one of --expired-token-file, --refresh-token-file and --headers-file can; give the others as files", strings.Join(stdin, " and "))
				}
				for _, s := range []struct{ flag, field string }{{"expired-token-file", "expired_token"}, {"refresh-token-file", "refresh_token"}} {
					if !fs.Changed(s.flag) {
						continue
					}
					path, _ := fs.GetString(s.flag)
					b, err := a.readSecretFile(path)
					if err != nil {
						return nil, usagef("--%s: %v", s.flag, err)
					}
					out[s.field] = b
				}
				if fs.Changed("headers-file") {
					path, _ := fs.GetString("headers-file")
					b, err := a.readInput(path)
					if err != nil {
						return nil, usagef("--headers-file: %v", redact.FileError(path, err))
					}
					var h map[string]any
					if err := json.Unmarshal(b, &h); err != nil {
						// The headers may hold cookies: do not quote them.
						return nil, invalidf("--headers-file %s: not a JSON object", path)
					}
					out["request_headers"] = h
				}
				return out, nil
			},
			fieldFlags: map[string]string{
				"session_id": "--session (or the SESSION argument)", "request_origin": "--origin",
				"expired_token": "--expired-token-file", "refresh_token": "--refresh-token-file",
				"request_headers": "--headers-file", "format": "--format", "request_originating_ip": "--ip", "reply_to": "--wait",
			},
		},
		{
			op: jobs.OpRevokeAll, use: "revoke-all", short: "Revoke every active session of a user",
			long: `Publishes a sessions.revoke_all job: the worker lists the user's active sessions and
revokes each but the exceptions. It is safe to repeat. With --wait, a progress bar
follows the worker's progress updates until the final result.

Account takeover: --lock makes the worker lock the user in Clerk first, so no
session can be created while the job runs and every session ends revoked. The
lock ends on its own (the result says when); unlock in the Clerk dashboard once
the user's credentials are reset. If Clerk refuses the lock (403: the instance
does not allow user lockout, or the key may not lock users) or answers without
locking the user, every session is revoked all the same and the job fails, its
error starting "user NOT locked" and saying what to do (docs/publish.md); --wait
says "user NOT locked" as soon as the lock is answered.`,
			ex: `  publish revoke-all --user user_2abc --wait
  publish revoke-all --user user_2abc --lock --wait                # account takeover
  publish revoke-all --user user_2abc --except sess_keep1,sess_keep2 --wait`,
			define: func(fs *pflag.FlagSet) {
				fs.String("user", "", "user id (user_...)")
				// Not a StringSlice: see splitList.
				fs.StringArray("except", nil, "session ids to keep (repeat the flag, or separate them with commas, spaces or lines)")
				fs.Bool("lock", false, "lock the user in Clerk before revoking, so no session can appear meanwhile")
			},
			body: func(fs *pflag.FlagSet) (map[string]any, error) {
				out := given(fs, "user", "user_id")
				if fs.Changed("except") {
					vs, _ := fs.GetStringArray("except")
					out["except_session_ids"] = append([]string{}, splitList(vs)...)
				}
				if lock, _ := fs.GetBool("lock"); lock {
					out["lock_user"] = true
				}
				return out, nil
			},
			fieldFlags: map[string]string{"user_id": "--user", "except_session_ids": "--except", "lock_user": "--lock"},
		},
	}
}

// readSecretFile reads a file holding one secret value, without its final
// newline. Its content is never quoted in errors.
func (a *app) readSecretFile(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(a.env.Stdin, maxSecretFileBytes+1))
		if err == nil && len(b) > maxSecretFileBytes {
			err = &fileread.TooLargeError{Max: maxSecretFileBytes}
		}
	} else {
		// Bounded, and without waiting on a pipe nobody writes to:
		// /dev/zero was read until memory ran out.
		b, err = fileread.Read(path, maxSecretFileBytes)
	}
	if err != nil {
		return "", redact.FileError(path, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// maxSecretFileBytes bounds a file holding one secret (a token, a cookie).
const maxSecretFileBytes = 1 << 20

// maxInputBytes bounds a file of jobs: 16,384 jobs of the largest size
// (jobs.MaxJobBytes, 64 KiB), four times the jobs stream's default cap.
const maxInputBytes = 1 << 30

// readInput reads a file of jobs, or standard input for "-", of at most
// maxInputBytes; a named pipe nobody writes to reads as empty rather than
// blocking (SIGTERM and all), and a device without end (/dev/zero) is
// refused at the bound rather than read until memory runs out.
func (a *app) readInput(path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(io.LimitReader(a.env.Stdin, maxInputBytes+1))
		if err == nil && len(b) > maxInputBytes {
			err = &fileread.TooLargeError{Max: maxInputBytes}
		}
		return b, err
	}
	return fileread.Read(path, maxInputBytes)
}

// parseSeconds reads "90", "90s" or "10m" as whole seconds.
func parseSeconds(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration like 90s or 10m, or a number of seconds")
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("want whole seconds")
	}
	return int64(d / time.Second), nil
}

// submitFlags are the flags every job command has.
type submitFlags struct {
	file       string
	jobID      string
	replyTo    string
	wait       bool
	timeout    time.Duration
	window     int
	skip       int
	batchID    string
	ackTimeout time.Duration
	// resume: the flags given that decide what a batch publishes and
	// where, as the command that continues it must repeat them.
	resume []string
}

func (a *app) jobCommands() []*cobra.Command {
	var cmds []*cobra.Command
	for _, spec := range a.specs() {
		sf := &submitFlags{}
		cmd := &cobra.Command{
			Use:   spec.use,
			Short: spec.short,
			Long: spec.long + `

Input: the flags above, or a JSON body with --file (- for standard input), or
NDJSON with --file for a batch, one job per line. Each job is checked against
schemas/` + jobs.SchemaFile(spec.op) + ` before anything is published; a batch is
published only if every line is valid.

A batch is published asynchronously, at most --window jobs awaiting JetStream's
acknowledgement at a time. If publishing stops on an error, the message says
how many jobs were accepted and which --skip and --batch-id continue the batch:
jobs accepted already are then deduplicated by their job ids.

` + exitCodesHelp,
			Example: spec.ex,
			Args:    cobra.MaximumNArgs(1),
		}
		if spec.positional == "" {
			cmd.Args = cobra.NoArgs
		}
		fs := cmd.Flags()
		spec.define(fs)
		fs.StringVarP(&sf.file, "file", "f", "", "read the job as JSON, or a batch as NDJSON, from this file (- for standard input)")
		fs.StringVar(&sf.jobID, "job-id", "", "the job's id (default: a new unique id); publishing the same id again is deduplicated")
		fs.StringVar(&sf.replyTo, "reply-to", "", "also send the result to this NATS subject (a service's inbox); see --wait")
		fs.BoolVarP(&sf.wait, "wait", "w", false, "wait for the result on a private inbox and print it")
		fs.DurationVar(&sf.timeout, "timeout", 30*time.Second, "with --wait: how long to wait for the result")
		fs.IntVar(&sf.window, "window", 256, "batch: jobs awaiting acknowledgement at most")
		fs.IntVar(&sf.skip, "skip", 0, "batch: skip the first N lines of the input (to resume a stopped batch)")
		fs.StringVar(&sf.batchID, "batch-id", "", "batch: job ids of lines without job_id are <batch-id>-<line> (default: a new id, printed)")
		fs.DurationVar(&sf.ackTimeout, "ack-timeout", 10*time.Second, "how long to wait for JetStream to acknowledge a job")
		cmd.RunE = a.runE(func(cmd *cobra.Command, args []string) error {
			return a.submit(cmd, spec, sf, args)
		})
		cmds = append(cmds, cmd)
	}
	return cmds
}

// splitList reads the values of a list flag: each may hold several,
// separated by commas, spaces or lines (--job-id "$(cat ids.txt)"). Such
// flags are string arrays, not pflag's StringSlice, which reads a value as
// CSV: it keeps the first line and drops the rest unsaid.
func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		out = append(out, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })...)
	}
	return out
}
