// Package onceflag refuses a single-valued command-line flag given twice
// with different values. pflag keeps the last value and says nothing:
// `publish revoke-all --user user_A --user user_B` would revoke user_B's
// sessions alone while the operator believes both users are done. Flags
// that gather values (slices, arrays, maps) and counters may repeat; the
// same value given twice is no contradiction and is taken.
//
// Call Watch once every flag of a set is defined, and Check (or Repeated,
// for a program that keeps the last value, as a service's wrapper that
// appends its overrides to defaults expects, but says so) after parsing.
package onceflag

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Watch wraps every single-valued flag of fs so that Check can tell one
// given twice. Flags watched already are left as they are. Names bound to
// one variable (pflag's values are pointers to it: natsconn's deprecated
// --server beside --nats-url) share what they were given, so that
// `--server A --nats-url B` is refused as `--nats-url A --nats-url B` is.
func Watch(fs *pflag.FlagSet) {
	seen := map[pflag.Value]*given{}
	fs.VisitAll(func(f *pflag.Flag) {
		if _, ok := f.Value.(*watched); ok || repeatable(f.Value) {
			return
		}
		g := &given{}
		if v := reflect.ValueOf(f.Value); v.Kind() == reflect.Pointer {
			if s, ok := seen[f.Value]; ok {
				g = s
			}
			seen[f.Value] = g
		}
		f.Value = &watched{Value: f.Value, given: g}
	})
}

// Repeated names, sorted, every watched flag of fs given more than once
// with different values (each name of a variable given under two).
func Repeated(fs *pflag.FlagSet) []string {
	var twice []string
	fs.Visit(func(f *pflag.Flag) {
		if w, ok := f.Value.(*watched); ok && w.differs {
			twice = append(twice, "--"+f.Name)
		}
	})
	slices.Sort(twice)
	return twice
}

// Check returns an error naming every watched flag of fs given more than
// once with different values, or nil. It never repeats a value: one may be
// a secret, or the URL of a server with its password.
func Check(fs *pflag.FlagSet) error {
	twice := Repeated(fs)
	if len(twice) == 0 {
		return nil
	}
	return fmt.Errorf("%s given more than once with different values: each takes one value, and only the last would count; give it once (to act on several things, run the command once for each)", strings.Join(twice, ", "))
}

// repeatable reports whether v takes a value at each use by design: a
// list (pflag's SliceValue: --concurrency 1,16 --concurrency 256), a map
// (--label a=1 --label b=2) or a counter (-vvv).
func repeatable(v pflag.Value) bool {
	if _, ok := v.(pflag.SliceValue); ok {
		return true
	}
	t := v.Type()
	return t == "count" || strings.HasPrefix(t, "stringTo") || strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array")
}

// watched is a flag's value that remembers the first value it was given.
type watched struct {
	pflag.Value
	*given
}

// given is the first value a variable took from the command line, under
// any of its names, as the flag writes it back (so that --wait=1 and
// --wait, 60s and 1m, are the same value), and whether a later one
// differed.
type given struct {
	first   *string
	differs bool
}

func (w *watched) Set(v string) error {
	if err := w.Value.Set(v); err != nil {
		return err // a usage error already
	}
	if s := w.Value.String(); w.first == nil {
		w.first = &s
	} else if *w.first != s {
		w.differs = true
	}
	return nil
}
