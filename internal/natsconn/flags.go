package natsconn

import (
	"fmt"

	"github.com/spf13/pflag"
)

// The connection flags every clerkjobs program takes, with the environment
// variable each falls back to (the nats CLI's, but for NATS_INBOX_PREFIX).
// Every one starts with "nats-", so that no program's own flags (publish's
// --user is a Clerk user, the console's --https-cert its web server's) can
// be mistaken for them.
const (
	FlagURL          = "nats-url"
	FlagCreds        = "nats-creds"
	FlagNKey         = "nats-nkey"
	FlagUser         = "nats-user"
	FlagPassword     = "nats-password"
	FlagPasswordFile = "nats-password-file"
	FlagTLSCA        = "nats-tls-ca"
	FlagTLSCert      = "nats-tls-cert"
	FlagTLSKey       = "nats-tls-key"
	FlagInboxPrefix  = "nats-inbox-prefix"
)

// connFlag is one connection flag: its name, its environment variable, the
// option it sets, and the name it had before the programs agreed on one
// set (still accepted, hidden and marked deprecated).
type connFlag struct {
	name, short, env, old, usage string
	field                        func(*Options) *string
}

func connFlags() []connFlag {
	return []connFlag{
		{FlagURL, "s", "NATS_URL", "server", "NATS server URL(s), comma-separated: nats://host:4222, tls://…", func(o *Options) *string { return &o.URL }},
		{FlagCreds, "", "NATS_CREDS", "creds", "NATS credentials file (JWT and NKey seed, as nsc issues them)", func(o *Options) *string { return &o.Creds }},
		{FlagNKey, "", "NATS_NKEY", "nkey", "NKey user seed file", func(o *Options) *string { return &o.NKeyFile }},
		{FlagUser, "", "NATS_USER", "", "NATS user name", func(o *Options) *string { return &o.User }},
		{FlagPassword, "", "NATS_PASSWORD", "", "NATS password (prefer the variable: arguments are visible to other local users)", func(o *Options) *string { return &o.Password }},
		{FlagPasswordFile, "", "NATS_PASSWORD_FILE", "", "file holding the NATS password (one line), instead of --nats-password: kept out of the environment", func(o *Options) *string { return &o.PasswordFile }},
		{FlagTLSCA, "", "NATS_CA", "tls-ca", "CA bundle to verify the NATS server with, instead of the system's", func(o *Options) *string { return &o.TLSCA }},
		{FlagTLSCert, "", "NATS_CERT", "tls-cert", "TLS client certificate file for NATS", func(o *Options) *string { return &o.TLSCert }},
		{FlagTLSKey, "", "NATS_KEY", "tls-key", "TLS client key file for NATS", func(o *Options) *string { return &o.TLSKey }},
		{FlagInboxPrefix, "", "NATS_INBOX_PREFIX", "inbox-prefix", "prefix of this client's reply subjects instead of _INBOX, for a user allowed only its own inboxes (e.g. _INBOX.svc_a)", func(o *Options) *string { return &o.InboxPrefix }},
	}
}

// Flags defines the connection flags on fs, bound to o. Their defaults are
// empty: a program's defaults belong to the code that uses the value, and
// values come from the environment through ApplyEnv, so that --help never
// prints a password taken from the environment. The names of earlier
// versions (--server, --creds, --nkey, --tls-ca, --tls-cert, --tls-key,
// --inbox-prefix) still work, hidden; Renamed says which were used.
func Flags(fs *pflag.FlagSet, o *Options) {
	for _, f := range connFlags() {
		fs.StringVarP(f.field(o), f.name, f.short, "", f.usage)
		if f.old != "" {
			fs.StringVar(f.field(o), f.old, "", "old name of --"+f.name)
			_ = fs.MarkHidden(f.old) // the flag was just defined
		}
	}
}

// Renamed returns a notice for each old flag name given on fs, naming the
// new one, for the program to print where its messages go.
func Renamed(fs *pflag.FlagSet) []string {
	var out []string
	for _, f := range connFlags() {
		if f.old != "" && fs.Changed(f.old) {
			out = append(out, fmt.Sprintf("--%s is an old name: use --%s (the same, in every clerkjobs program)", f.old, f.name))
		}
	}
	return out
}

// ApplyEnv sets every option of o whose flag (under its name or its old
// one) was not given on fs from its environment variable, when that is set.
// getenv is os.Getenv in programs; tests pass their own.
func ApplyEnv(fs *pflag.FlagSet, o *Options, getenv func(string) string) {
	for _, f := range connFlags() {
		if fs.Changed(f.name) || (f.old != "" && fs.Changed(f.old)) {
			continue
		}
		if v := getenv(f.env); v != "" {
			*f.field(o) = v
		}
	}
}

// EnvOf is the environment variable of the connection flag name, under its
// name or its old one ("" when name is not one): a program's help, and the
// test of whether a flag is a connection flag (--server, the old name of
// --nats-url, takes a URL with its password as --nats-url does).
func EnvOf(name string) string {
	for _, f := range connFlags() {
		if f.name == name || (f.old != "" && f.old == name) {
			return f.env
		}
	}
	return ""
}
