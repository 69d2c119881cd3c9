// Package ratebudget spends one Clerk rate limit across every worker
// process that uses the same secret key: Clerk's limit belongs to the key
// (1,000 requests per 10 s on production instances, 100 per 10 s on
// development ones), so the operator configures Clerk's own number once,
// the same on every replica, and the replicas share it through JetStream.
//
// # Model
//
// A budget is a schedule of slots: a GCRA (generic cell rate algorithm, in
// its virtual-scheduling form) with burst 1, whose slots are an interval T
// apart, T chosen from the limit with a safety margin so that no window of
// the limit's length, fixed or sliding, ever holds more calls than the
// limit (docs/rate-limit.md has the arithmetic). Wait takes the next slot
// and blocks until its time; callers are served in turn.
//
// In scope "fleet" (New) the schedule lives in one entry of a JetStream
// key-value bucket per key fingerprint, in the server's clock. A replica
// claims a few slots at a time with a compare-and-swap of that entry, never
// more than half a second ahead, and hands them to its callers at their
// times; a replica alone at work may hold the whole half second, busy
// replicas hold even shares of it. Each replica also keeps a heartbeat
// entry (to count the fleet) and watches the key's entries (to learn of
// pauses, and the server's clock). In scope "process" (NewLocal) the same
// schedule runs in memory, for this process alone.
//
// A 429 reported with Throttled pauses every replica sharing the key for
// its Retry-After (bounded by WithMaxPause): the pause is written into the
// shared schedule, and the others withdraw the slots they hold as soon as
// they see it. When JetStream cannot be reached, a replica spends the
// slots it holds, then a trickle from a reserve the shared schedule leaves
// unused (1% of the limit, for at most 30 s), never more: see Mode.
//
// # Use
//
//	kv, err := js.CreateOrUpdateKeyValue(ctx, ratebudget.BucketConfig("SESSION_RATE_BUDGET", 3, jetstream.FileStorage))
//	limit, err := ratebudget.ParseLimit("1000/10s")
//	budget, err := ratebudget.New(kv, ratebudget.Fingerprint(secretKey), limit)
//	defer budget.Close()
//
//	if err := budget.Wait(ctx); err != nil {
//		return err
//	}
//	_, err = clerk.RevokeSession(ctx, id)
//	if e, ok := errors.AsType[*clerkapi.Error](err); ok && e.StatusCode == 429 {
//		budget.Throttled(e.RetryAfter)
//	}
//
// Stats feeds metrics; ReadStatus shows every key's budget from the bucket.
package ratebudget
