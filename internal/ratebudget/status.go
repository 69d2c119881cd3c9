package ratebudget

import (
	"cmp"
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
	// FleetLimit is the limit the fleet runs at: the strictest of Limit and
	// the live replicas' configured limits, as each replica works it out.
	FleetLimit Limit
	// Limits are the live replicas' configured limits, each once, strictest
	// first, at most maxShownLimits (an entry is any writer's). More than one
	// means replicas were configured apart: the fleet runs at the strictest
	// until every replica is configured alike.
	Limits []Limit
	// CallsPerSecond sums the members' recent call rates.
	CallsPerSecond float64
	// Members counts the replicas whose heartbeat is recent (by the
	// server's clock).
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
	return readStatus(ctx, kv, time.Now)
}

// readStatus is ReadStatus with this process's clock.
func readStatus(ctx context.Context, kv jetstream.KeyValue, localNow func() time.Time) ([]Status, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read rate budgets from bucket %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	// Heartbeats carry the server's time: judged by this process's clock,
	// a few seconds of skew hid every replica, or showed dead ones.
	now := localNow()
	if st, err := kv.Status(ctx); err == nil {
		if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo() != nil && !bs.StreamInfo().TimeStamp.IsZero() {
			now = bs.StreamInfo().TimeStamp
		}
	}
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
			if l, err := ParseLimit(hb.Limit); err == nil && sane(l) && !slices.Contains(s.Limits, l) {
				s.Limits = append(s.Limits, l)
			}
		}
	}
	out := make([]Status, 0, len(byFP))
	for _, s := range byFP {
		slices.SortFunc(s.Limits, func(a, b Limit) int { return cmpInterval(b, a) })
		s.Limits = s.Limits[:min(len(s.Limits), maxShownLimits)]
		s.FleetLimit = s.Limit
		if !sane(s.Limit) {
			s.FleetLimit = Limit{}
		}
		if len(s.Limits) > 0 && (s.FleetLimit.Unlimited() || cmpInterval(s.Limits[0], s.FleetLimit) > 0) {
			s.FleetLimit = s.Limits[0]
		}
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
	return out, nil
}

// maxShownLimits bounds Status.Limits: a fleet meant to have one limit
// shows a few when misconfigured, never a screenful.
const maxShownLimits = 8

// sane reports whether a replica would space its claims by l: a limit,
// whose interval is within the longest pause (see fleet.intervalLocked;
// anything longer is a foreign writer's garbage).
func sane(l Limit) bool {
	return !l.Unlimited() && l.Per/time.Duration(l.N) <= DefaultMaxPause
}

// cmpInterval compares the intervals between calls of two limits: > 0
// when a is the stricter (its calls further apart).
func cmpInterval(a, b Limit) int {
	// In floats: Per × N can pass int64 (24 h × a million calls).
	return cmp.Compare(float64(a.Per)/float64(a.N), float64(b.Per)/float64(b.N))
}
