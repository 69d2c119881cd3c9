package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
	"github.com/clerkjobs/clerkjobs/internal/fileread"
	"github.com/clerkjobs/clerkjobs/internal/natsconn"
	"github.com/clerkjobs/clerkjobs/internal/onceflag"
	"github.com/clerkjobs/clerkjobs/internal/redact"
	"github.com/clerkjobs/clerkjobs/internal/text"
	"github.com/clerkjobs/clerkjobs/jobs"
	"github.com/clerkjobs/clerkjobs/worker"
)

var errHelp = errors.New("help requested")

// maxKeyFileBytes bounds the file --clerk-secret-key-file names: a key is
// one line of about 50 characters.
const maxKeyFileBytes = 4 << 10

type config struct {
	worker       worker.Config
	nats         natsconn.Options
	secretKey    string
	apiURL       string
	metricsAddr  string
	embeddedAddr string
	dataDir      string
	emulatorAddr string
	logFormat    string
	logLevel     string
}

// flagEnv maps each flag to the environment variable that sets it when the
// flag is not given. The NATS connection flags are natsconn's.
func flagEnv() [][2]string {
	return [][2]string{
		{"clerk-secret-key-file", "CLERK_SECRET_KEY_FILE"}, {"clerk-api-url", "CLERK_API_URL"},
		{"concurrency", "WORKER_CONCURRENCY"}, {"rate-limit", "WORKER_RATE_LIMIT"}, {"rate-limit-scope", "WORKER_RATE_LIMIT_SCOPE"},
		{"backoff-initial", "WORKER_BACKOFF_INITIAL"}, {"backoff-max", "WORKER_BACKOFF_MAX"},
		{"retry-budget", "WORKER_RETRY_BUDGET"}, {"nak-delay", "WORKER_NAK_DELAY"}, {"nak-delay-max", "WORKER_NAK_DELAY_MAX"},
		{"max-deliveries", "WORKER_MAX_DELIVERIES"}, {"ack-wait", "WORKER_ACK_WAIT"}, {"max-ack-pending", "WORKER_MAX_ACK_PENDING"},
		{"subject-prefix", "WORKER_SUBJECT_PREFIX"}, {"jobs-stream", "WORKER_JOBS_STREAM"},
		{"results-stream", "WORKER_RESULTS_STREAM"}, {"dlq-stream", "WORKER_DLQ_STREAM"}, {"consumer", "WORKER_CONSUMER"}, {"progress-bucket", "WORKER_PROGRESS_BUCKET"},
		{"replicas", "WORKER_REPLICAS"}, {"storage", "WORKER_STORAGE"}, {"dedup-window", "WORKER_DEDUP_WINDOW"}, {"results-max-age", "WORKER_RESULTS_MAX_AGE"},
		{"results-max-bytes", "WORKER_RESULTS_MAX_BYTES"},
		{"jobs-max-bytes", "WORKER_JOBS_MAX_BYTES"}, {"dlq-max-age", "WORKER_DLQ_MAX_AGE"}, {"dlq-max-bytes", "WORKER_DLQ_MAX_BYTES"},
		{"drain-timeout", "WORKER_DRAIN_TIMEOUT"}, {"probe-interval", "WORKER_PROBE_INTERVAL"},
		{"instance", "WORKER_INSTANCE"}, {"metrics-addr", "WORKER_METRICS_ADDR"},
		{"embedded-addr", "WORKER_EMBEDDED_ADDR"}, {"data-dir", "WORKER_DATA_DIR"}, {"emulator-addr", "WORKER_EMULATOR_ADDR"},
		{"log-format", "WORKER_LOG_FORMAT"}, {"log-level", "WORKER_LOG_LEVEL"},
		{"bulk-concurrency", "WORKER_BULK_CONCURRENCY"}, {"reply-prefix", "WORKER_REPLY_PREFIX"},
	}
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	d := worker.DefaultConfig()
	c := &config{worker: d}
	t := &c.worker.Topology
	var storage string
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	natsconn.Flags(fs, &c.nats)
	fs.Lookup(natsconn.FlagURL).Usage += "; empty: run an embedded server"
	keyFile := fs.String("clerk-secret-key-file", "", "file holding the Clerk secret key (else CLERK_SECRET_KEY; neither: run the emulator)")
	fs.StringVar(&c.apiURL, "clerk-api-url", clerkapi.DefaultBaseURL, "Clerk Backend API base URL, with /v1")
	fs.IntVar(&c.worker.Concurrency, "concurrency", d.Concurrency, "jobs run at once in this process")
	rateLimit := fs.String("rate-limit", d.RateLimit.String(), "Clerk's rate limit for the secret key, as Clerk states it (1000/10s production, 100/10s development: the default with an sk_test_ key; 100/s; 0: none), the same on every replica: they share it")
	rateScope := fs.String("rate-limit-scope", string(d.RateScope), "fleet: every worker with the same key and JetStream shares the limit; process: this process alone")
	fs.DurationVar(&c.worker.Retry.Initial, "backoff-initial", d.Retry.Initial, "first retry backoff within a delivery")
	fs.DurationVar(&c.worker.Retry.Max, "backoff-max", d.Retry.Max, "largest retry backoff within a delivery")
	fs.DurationVar(&c.worker.Retry.DeliveryBudget, "retry-budget", d.Retry.DeliveryBudget, "time one delivery keeps retrying before the job is naked")
	fs.DurationVar(&c.worker.Retry.NakDelay, "nak-delay", d.Retry.NakDelay, "redelivery delay after the first delivery (doubles each time)")
	fs.DurationVar(&c.worker.Retry.NakDelayMax, "nak-delay-max", d.Retry.NakDelayMax, "largest redelivery delay")
	fs.IntVar(&t.MaxDeliver, "max-deliveries", t.MaxDeliver, "deliveries of a failing job before it is dead-lettered as exhausted")
	fs.DurationVar(&t.AckWait, "ack-wait", t.AckWait, "JetStream ack wait (jobs in flight are kept alive)")
	fs.IntVar(&t.MaxAckPending, "max-ack-pending", t.MaxAckPending, "jobs in flight over all workers")
	fs.StringVar(&t.Subjects.Prefix, "subject-prefix", t.Subjects.Prefix, "first token of every subject")
	fs.StringVar(&t.JobsStream, "jobs-stream", t.JobsStream, "jobs stream name")
	fs.StringVar(&t.ResultsStream, "results-stream", t.ResultsStream, "results stream name")
	fs.StringVar(&t.DeadLetterStream, "dlq-stream", t.DeadLetterStream, "dead-letter stream name")
	fs.StringVar(&t.Consumer, "consumer", t.Consumer, "durable consumer shared by all workers")
	fs.StringVar(&t.ProgressBucket, "progress-bucket", t.ProgressBucket, "key-value bucket of revoke_all progress")
	fs.IntVar(&t.Replicas, "replicas", t.Replicas, "stream replicas (3 on a three-node cluster)")
	fs.StringVar(&storage, "storage", "file", "stream storage: file or memory")
	fs.DurationVar(&t.DedupWindow, "dedup-window", t.DedupWindow, "jobs with the same Nats-Msg-Id within this window run once")
	fs.Int64Var(&t.JobsMaxBytes, "jobs-max-bytes", t.JobsMaxBytes, "jobs stream size; when full, new jobs are refused (their publishers told), none stored is dropped")
	fs.DurationVar(&t.ResultsMaxAge, "results-max-age", t.ResultsMaxAge, "how long results are kept")
	fs.Int64Var(&t.ResultsMaxBytes, "results-max-bytes", t.ResultsMaxBytes, "results stream size; when full, jobs are kept, not dropped")
	fs.DurationVar(&t.DeadLetterMaxAge, "dlq-max-age", t.DeadLetterMaxAge, "how long dead letters are kept (0: forever)")
	fs.Int64Var(&t.DeadLetterMaxBytes, "dlq-max-bytes", t.DeadLetterMaxBytes, "dead-letter stream size; when full, jobs are kept, not dropped")
	fs.IntVar(&c.worker.Bulk.Concurrency, "bulk-concurrency", d.Bulk.Concurrency, "revokes in flight for one revoke_all job (0: sized from the rate limit and Clerk's latency)")
	fs.DurationVar(&c.worker.DrainTimeout, "drain-timeout", d.DrainTimeout, "time jobs in flight get to finish on shutdown")
	fs.DurationVar(&c.worker.ProbeInterval, "probe-interval", d.ProbeInterval, "how often an open circuit probes Clerk")
	fs.StringVar(&c.worker.Instance, "instance", d.Instance, "name of this process in records, logs and its status subject: letters, digits, _ and -, at most 64")
	fs.StringSliceVar(&c.worker.ReplyPrefixes, "reply-prefix", d.ReplyPrefixes, "allowed reply_to prefixes ending in '.', comma-separated; a tenant's jobs must reply under <prefix><tenant>.; \"\" allows any subject (still checked against the worker's permissions and the streams)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", ":9090", "address for /metrics, /healthz, /readyz (empty: off)")
	fs.StringVar(&c.embeddedAddr, "embedded-addr", "127.0.0.1:4222", "listen address of the embedded NATS server")
	fs.StringVar(&c.dataDir, "data-dir", "data/nats", "JetStream directory of the embedded NATS server")
	fs.StringVar(&c.emulatorAddr, "emulator-addr", "127.0.0.1:8090", "listen address of the in-process Clerk emulator")
	fs.StringVar(&c.logFormat, "log-format", "auto", "json, console, or auto (console on a terminal)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: worker [flags]\n\nRuns Clerk session jobs from NATS JetStream. Every flag can also be set by\nthe environment variable shown; CLERK_SECRET_KEY holds the Clerk secret key.\n\n")
		fs.VisitAll(func(f *pflag.Flag) {
			if env := envOf(f.Name); env != "" {
				f.Usage += " [$" + env + "]"
			}
		})
		fmt.Fprint(stderr, fs.FlagUsages())
	}
	onceflag.Watch(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, errHelp
		}
		// pflag quotes the value it could not parse: a key, or a URL with
		// a password, given to the wrong flag must not be repeated.
		return nil, errors.New(redact.All(err.Error()))
	}
	if twice := onceflag.Repeated(fs); len(twice) > 0 {
		// A service's flags are often defaults followed by overrides (an
		// image's command, then a deployment's): the last counts, as it
		// always has, but the worker says so, the values unrepeated.
		fmt.Fprintf(stderr, "worker: %s given more than once with different values: the last given counts\n", strings.Join(twice, ", "))
	}
	if err := refuseSecrets(fs); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		// A key given as an argument (`worker $CLERK_SECRET_KEY`, or after
		// a flag left empty: --clerk-secret-key-file= KEY) is not repeated.
		if err := refuseSecret("argument", fs.Arg(0)); err != nil {
			return nil, fmt.Errorf("unexpected %w; the worker takes only flags (see --help)", err)
		}
		return nil, fmt.Errorf("unexpected argument %q: the worker takes only flags (see --help)", fs.Arg(0))
	}
	natsconn.ApplyEnv(fs, &c.nats, getenv)
	for _, n := range natsconn.Renamed(fs) {
		fmt.Fprintf(stderr, "worker: %s\n", n)
	}
	for _, fe := range flagEnv() {
		if v := getenv(fe[1]); v != "" && !fs.Changed(fe[0]) {
			if err := refuseSecret("environment variable "+fe[1], v); err != nil {
				return nil, err
			}
			if err := fs.Set(fe[0], v); err != nil {
				return nil, fmt.Errorf("environment variable %s=%q: %v", fe[1], v, err)
			}
		}
	}
	limit, err := worker.ParseRateLimit(*rateLimit)
	if err != nil {
		return nil, fmt.Errorf("--rate-limit: %v", err)
	}
	c.worker.RateLimit = limit
	c.worker.RateScope = worker.RateScope(*rateScope)
	switch storage {
	case "file":
	case "memory":
		t.Storage = jetstream.MemoryStorage
	default:
		return nil, fmt.Errorf("--storage %q: want file or memory", storage)
	}
	// Without a key the worker runs its in-process emulator, NOT Clerk, and
	// still takes the jobs of whatever NATS it is given. Only the absence
	// of every Clerk setting means that: a key that is set but blank, or an
	// API URL without a key, is a deployment that meant Clerk.
	const noKey = "without a key the worker would call its in-process Clerk emulator, not Clerk"
	rawKey := getenv("CLERK_SECRET_KEY")
	c.secretKey = strings.TrimSpace(rawKey)
	if rawKey != "" && c.secretKey == "" {
		return nil, fmt.Errorf("CLERK_SECRET_KEY is set but blank: put the Clerk secret key in it (sk_live_… or sk_test_…), or unset it to run the emulator; %s", noKey)
	}
	keySource := "CLERK_SECRET_KEY"
	if *keyFile != "" && rawKey != "" {
		// Which would win is a guess: a key rotated in one place only
		// would keep the worker on the other, with nothing said.
		return nil, errors.New("CLERK_SECRET_KEY and --clerk-secret-key-file (CLERK_SECRET_KEY_FILE) are both set: give the Clerk secret key one way, and unset the other")
	}
	if *keyFile != "" {
		keySource = "the key in --clerk-secret-key-file (CLERK_SECRET_KEY_FILE)"
		// Bounded, and without waiting on a pipe nobody writes to: /dev/zero
		// was read until memory ran out, a named pipe blocked the start,
		// SIGTERM and all.
		b, err := fileread.Read(*keyFile, maxKeyFileBytes)
		if err != nil {
			return nil, fmt.Errorf("--clerk-secret-key-file (CLERK_SECRET_KEY_FILE): %v", err)
		}
		c.secretKey = strings.TrimSpace(string(b))
		if c.secretKey == "" {
			return nil, fmt.Errorf("--clerk-secret-key-file (CLERK_SECRET_KEY_FILE): %s is empty: put the Clerk secret key in it (sk_live_… or sk_test_…); %s", *keyFile, noKey)
		}
	}
	// The budget is the key's (without one, the in-process emulator's):
	// named by its fingerprint, never the key.
	c.worker.RateKey = worker.KeyFingerprint(cmp.Or(c.secretKey, emulator.DefaultSecretKey))
	if c.secretKey != "" {
		if err := checkSecretKey(keySource, c.secretKey); err != nil {
			return nil, err
		}
	}
	// With the key, when there is one: a live key is refused over plain
	// http (clerkapi.New says so without the key).
	if _, err := clerkapi.New(clerkapi.WithSecretKey(cmp.Or(c.secretKey, "sk_check")), clerkapi.WithBaseURL(c.apiURL)); err != nil {
		return nil, fmt.Errorf("--clerk-api-url (CLERK_API_URL): %v", err)
	}
	if strings.HasPrefix(c.secretKey, "sk_test_") && !fs.Changed("rate-limit") {
		// A development instance's key: Clerk limits it to a tenth of a
		// production one's (100/10s), and the default would draw a 429 a
		// second.
		c.worker.RateLimit = worker.RateLimit{N: 100, Per: 10 * time.Second}
	}
	if c.secretKey == "" && fs.Changed("clerk-api-url") {
		return nil, fmt.Errorf("--clerk-api-url (CLERK_API_URL) is set but no Clerk secret key is: set CLERK_SECRET_KEY or --clerk-secret-key-file (CLERK_SECRET_KEY_FILE), or unset the URL to run the emulator; %s", noKey)
	}
	if c.nats.URL != "" && strings.TrimSpace(c.nats.URL) == "" {
		// Blank is neither a server nor "none": it would connect to
		// nats://127.0.0.1:4222, where no embedded server runs.
		return nil, fmt.Errorf("--%s (%s) is set but blank: set it to your NATS server (nats://host:4222), or unset it to run the embedded server",
			natsconn.FlagURL, natsconn.EnvOf(natsconn.FlagURL))
	}
	if c.nats.URL != "" {
		if err := c.nats.Validate(); err != nil {
			return nil, fmt.Errorf("NATS options: %v", err)
		}
	} else if err := natsSettingsWithoutURL(c.nats); err != nil {
		return nil, err
	} else if err := c.nats.Validate(); err != nil {
		// The inbox prefix: the connection to the embedded server uses it.
		return nil, fmt.Errorf("NATS options: %v", err)
	} else if c.secretKey != "" {
		if err := checkEmbeddedAddr(c.embeddedAddr); err != nil {
			return nil, err
		}
	}
	if !slices.Contains([]string{"auto", "json", "console"}, c.logFormat) {
		return nil, fmt.Errorf("--log-format %q: want json, console or auto", c.logFormat)
	}
	// zerolog reads more (a number, "disabled", "panic"), which would hide
	// every warning and job outcome without a word.
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(c.logLevel)) {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	if fs.Changed("reply-prefix") && len(c.worker.ReplyPrefixes) == 0 {
		c.worker.ReplyPrefixes = []string{""} // --reply-prefix "": any subject
	}
	if err := c.worker.Validate(); err != nil {
		return nil, namedSetting(err)
	}
	t.Subjects.Prefix = cmp.Or(t.Subjects.Prefix, jobs.DefaultPrefix)
	c.nats.Name = "clerkjobs-worker " + c.worker.Instance
	return c, nil
}

// namedSetting puts the flag and variable that set what err is about in
// front of it: worker.Config.Validate names settings as a Go caller knows
// them ("ack wait 0s: ..."), and a user of this command needs to know what
// to change. An error that compares two settings ("backoff max 5s: must be
// at least backoff initial 10s") names both flags: either may be the one
// given, and naming only the first sent the user to one never set.
func namedSetting(err error) error {
	msg := err.Error()
	first, ok := settingAt(msg)
	if !ok {
		return err
	}
	other := ""
	for _, rel := range []string{" is below ", ": must be at least ", "; set the "} {
		if _, rest, found := strings.Cut(msg, rel); found {
			other, _ = settingAt(rest)
			break
		}
	}
	if strings.Contains(msg, " is under the jobs prefix") { // checkReplyPrefix's name for it
		other = "subject-prefix"
	}
	names := "--" + first + " (" + envOf(first) + ")"
	if other != "" && other != first {
		names += " or --" + other + " (" + envOf(other) + ")"
	}
	return fmt.Errorf("%s: %w", names, err)
}

// settingAt returns the flag of the setting s starts with, named exactly
// as Validate names it: the whole name, then its value or a colon. Of two
// names one of which starts the other ("nak delay", "nak delay max") the
// longer that fits wins, whatever their order.
func settingAt(s string) (flag string, ok bool) {
	// How Validate names each setting, and the flag that sets it.
	settings := [][2]string{
		{"ack wait", "ack-wait"}, {"backoff initial", "backoff-initial"}, {"backoff max", "backoff-max"},
		{"bulk concurrency", "bulk-concurrency"}, {"concurrency", "concurrency"},
		{"dead-letter max age", "dlq-max-age"}, {"dead-letter max bytes", "dlq-max-bytes"}, {"dead-letter stream", "dlq-stream"},
		{"dedup window", "dedup-window"}, {"drain timeout", "drain-timeout"}, {"instance name", "instance"},
		{"jobs stream", "jobs-stream"}, {"jobs max bytes", "jobs-max-bytes"}, {"results stream", "results-stream"}, {"consumer", "consumer"}, {"progress bucket", "progress-bucket"},
		{"max ack pending", "max-ack-pending"}, {"max deliveries", "max-deliveries"},
		{"nak delay", "nak-delay"}, {"nak delay max", "nak-delay-max"}, {"probe interval", "probe-interval"},
		{"rate limit", "rate-limit"}, {"rate scope", "rate-limit-scope"}, {"replicas", "replicas"}, {"reply prefix", "reply-prefix"},
		{"results max age", "results-max-age"}, {"results max bytes", "results-max-bytes"}, {"retry budget per delivery", "retry-budget"}, {"subject prefix", "subject-prefix"},
	}
	best := ""
	for _, st := range settings {
		if (strings.HasPrefix(s, st[0]+" ") || strings.HasPrefix(s, st[0]+":")) && len(st[0]) > len(best) {
			best, flag = st[0], st[1]
		}
	}
	return flag, best != ""
}

// natsSettingsWithoutURL refuses a NATS credential or TLS setting given
// without a URL. Without one the worker runs an embedded server, which has
// no authentication: the setting would be ignored, and a deployment that
// lost its NATS_URL would run, ready, on a server nobody publishes to. As an
// API URL without a Clerk key, it means a real server was meant.
func natsSettingsWithoutURL(o natsconn.Options) error {
	for _, s := range []struct{ flag, value string }{
		{natsconn.FlagCreds, o.Creds}, {natsconn.FlagNKey, o.NKeyFile}, {natsconn.FlagUser, o.User}, {natsconn.FlagPassword, o.Password}, {natsconn.FlagPasswordFile, o.PasswordFile},
		{natsconn.FlagTLSCA, o.TLSCA}, {natsconn.FlagTLSCert, o.TLSCert}, {natsconn.FlagTLSKey, o.TLSKey},
	} {
		if s.value != "" {
			// Both names in what to do: the setting may come from either.
			return fmt.Errorf("--%s (%s) is set but --%s (%s) is not: without a URL the worker runs an embedded NATS server, which has no authentication, and would ignore it; set --%s (%s) to your NATS server, or remove --%s and unset %s to run the embedded one",
				s.flag, natsconn.EnvOf(s.flag), natsconn.FlagURL, natsconn.EnvOf(natsconn.FlagURL), natsconn.FlagURL, natsconn.EnvOf(natsconn.FlagURL), s.flag, natsconn.EnvOf(s.flag))
		}
	}
	return nil
}

// checkEmbeddedAddr refuses to serve the embedded NATS server beyond this
// machine when the worker holds a Clerk key: the server has no
// authentication, so whoever reached it could revoke any session or mint a
// token for one with that key. With the emulator there is nothing to take.
func checkEmbeddedAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	shown := text.Truncate(addr, 80) // bounded; %q below escapes control characters
	if err != nil {
		return fmt.Errorf("--embedded-addr (WORKER_EMBEDDED_ADDR) %q: want host:port, e.g. 127.0.0.1:4222", shown)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("--embedded-addr (WORKER_EMBEDDED_ADDR) %q listens beyond this machine, and the embedded NATS server has no authentication: anyone who reaches it could revoke sessions or mint tokens with your Clerk key; keep it on 127.0.0.1, ::1 or localhost, or set NATS_URL to a server with users and permissions (deploy/nats)", shown)
}

// checkSecretKey says what is wrong with the Clerk secret key read from
// source, never repeating it. A key with a space, a line break or a control
// character inside (two keys pasted, a note after it, a file of two lines)
// can never authenticate: Go refuses to send it as a header, or Clerk
// answers 401 to every call, and every job would fail.
func checkSecretKey(source, key string) error {
	if !strings.HasPrefix(key, "sk_") {
		return fmt.Errorf("%s: does not look like a Clerk secret key (sk_live_… or sk_test_…); copy it from the Clerk dashboard, API keys", source)
	}
	if i := strings.IndexFunc(key, func(r rune) bool { return r <= ' ' || r >= 0x7f }); i >= 0 {
		return fmt.Errorf("%s: the key (%d characters) holds a space, a line break or a control character at character %d; a Clerk secret key is one word (sk_live_… or sk_test_…): keep it alone, nothing before or after it", source, len(key), i+1)
	}
	return nil
}

// refuseSecret refuses a setting whose value is shaped like a secret (a
// Clerk key, a JWT), naming the setting and never the value. Only
// CLERK_SECRET_KEY, or the file CLERK_SECRET_KEY_FILE names, holds the Clerk
// key; any other value ends up where others read it: refused, in the error
// that says why (the process's log); accepted, in every result a tenant
// reads (the instance name), in stream and subject names, in the log lines
// that name an address or a directory.
//
// A URL with a password or token in it (nats://user:password@host) is
// refused alike: no setting of the worker's own takes one (Clerk's API URL
// neither: the key authenticates, and the URL is logged), and the NATS
// server's URL, which may, is natsconn's.
func refuseSecret(setting, value string) error {
	if redact.HasURLCredentials(value) {
		return fmt.Errorf("%s: its value (%d characters) holds a URL with a password or token in it (scheme://user:password@host), so it is not repeated here; a NATS password goes only in the URL of --nats-url (NATS_URL), --nats-password-file (NATS_PASSWORD_FILE) or NATS_PASSWORD, the Clerk secret key only in CLERK_SECRET_KEY or --clerk-secret-key-file (CLERK_SECRET_KEY_FILE)", setting, len(value))
	}
	if !redact.Looks(value) {
		return nil
	}
	return fmt.Errorf("%s: its value (%d characters) is shaped like a secret (a Clerk key or a JWT), so it is not repeated here; the Clerk secret key goes only in CLERK_SECRET_KEY, or in a file named by --clerk-secret-key-file (CLERK_SECRET_KEY_FILE)", setting, len(value))
}

// refuseSecrets applies refuseSecret to every flag of the worker's own set
// given on the command line. The NATS connection flags are natsconn's
// (--nats-password holds a secret by design).
func refuseSecrets(fs *pflag.FlagSet) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if err == nil && natsconn.EnvOf(f.Name) == "" {
			err = refuseSecret("--"+f.Name, f.Value.String())
		}
	})
	return err
}

func envOf(flag string) string {
	if env := natsconn.EnvOf(flag); env != "" {
		return env
	}
	for _, fe := range flagEnv() {
		if fe[0] == flag {
			return fe[1]
		}
	}
	return ""
}

// strayVariables names the variables of environ that look meant for the
// worker and set nothing, so that a mistyped name (WORKER_CONCURENCY) is
// said at start rather than ignored, the worker running on the default.
// Every WORKER_* variable is a setting or stray; CLERK_* and NATS_* ones
// are shared with other programs (CLERK_PUBLISHABLE_KEY), so only those a
// letter or two from a setting are named. Kubernetes's service variables
// (WORKER_SERVICE_HOST, NATS_PORT_4222_TCP, … for a Service named worker
// or nats) are not meant for the worker and are left out.
func strayVariables(environ []string) []string {
	var settings []string
	for _, fe := range flagEnv() {
		settings = append(settings, fe[1])
	}
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	natsconn.Flags(fs, new(natsconn.Options))
	fs.VisitAll(func(f *pflag.Flag) {
		if env := natsconn.EnvOf(f.Name); env != "" {
			settings = append(settings, env)
		}
	})
	settings = append(settings, "CLERK_SECRET_KEY")
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		if slices.Contains(settings, name) || kubernetesServiceVariable.MatchString(upper) {
			continue
		}
		nearest, distance := "", 3
		for _, s := range settings {
			if d := editDistance(upper, s); d < distance {
				nearest, distance = s, d
			}
		}
		shown := strconv.Quote(text.Truncate(redact.Text(name), 80))
		switch {
		case nearest != "":
			out = append(out, fmt.Sprintf("%s is not a setting of the worker and is ignored: did you mean %s?", shown, nearest))
		case strings.HasPrefix(upper, "WORKER_"):
			out = append(out, fmt.Sprintf("%s is not a setting of the worker and is ignored (--help lists them)", shown))
		}
	}
	return out
}

// kubernetesServiceVariable matches the variables Kubernetes sets in a pod
// for each Service of its namespace (NAME_SERVICE_HOST, NAME_PORT, …).
var kubernetesServiceVariable = regexp.MustCompile(`_SERVICE_HOST$|_SERVICE_PORT(_[A-Z0-9_]+)?$|_PORT$|_PORT_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?$`)

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
