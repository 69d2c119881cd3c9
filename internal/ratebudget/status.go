package ratebudget

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Status is one key's budget as the bucket shows it, for `publish status`.
type Status struct {
	// Fingerprint names the key (see Fingerprint).
	Fingerprint string
	// Limit is the limit of the replica that claimed last; zero if no
	// replica claimed since the state was created.
	Limit Limit
	// CallsPerSecond sums the members' recent call rates.
	CallsPerSecond float64
	// Members counts the replicas whose heartbeat is recent (by the
	// reader's clock).
	Members int
	// PausedUntil is the end of a pause still in force (a 429), else zero.
	PausedUntil time.Time
	// Granted counts the slots claimed since the state was created.
	Granted uint64
	// Updated is when the state was last written (server clock).
	Updated time.Time
}

// ReadStatus reads every key's budget from the bucket, ordered by
// fingerprint. It reads only (one ordered consumer over the bucket).
func ReadStatus(ctx context.Context, kv jetstream.KeyValue) ([]Status, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read rate budgets from bucket %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	now := time.Now()
	byFP := map[string]*Status{}
	get := func(fp string) *Status {
		s := byFP[fp]
		if s == nil {
			s = &Status{Fingerprint: fp}
			byFP[fp] = s
		}
		return s
	}
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, fmt.Errorf("read rate budgets from bucket %s: %w", kv.Bucket(), ctx.Err())
		}
		if e == nil {
			break // every current entry delivered
		}
		fp, rest, ok := strings.Cut(e.Key(), ".")
		switch {
		case !ok:
		case rest == "state":
			var st state
			if json.Unmarshal(e.Value(), &st) != nil {
				continue
			}
			s := get(fp)
			s.Limit, _ = ParseLimit(st.Limit)
			s.Granted, s.Updated = st.Granted, e.Created()
			if p := time.Unix(0, st.PauseUntil); st.PauseUntil != 0 && p.After(now) {
				s.PausedUntil = p
			}
		case strings.HasPrefix(rest, "m."):
			var hb heartbeat
			if json.Unmarshal(e.Value(), &hb) != nil || now.Sub(e.Created()) > memberTTL {
				continue
			}
			s := get(fp)
			s.Members++
			s.CallsPerSecond += hb.Rate
		}
	}
	out := make([]Status, 0, len(byFP))
	for _, s := range byFP {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
	return out, nil
}
