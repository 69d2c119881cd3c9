package ratebudget

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Fingerprint names the budget of a Clerk secret key: the first 16 hex
// digits of a SHA-256 over a fixed label and the key. It identifies the key
// (workers with the same key share a budget, with different keys they do
// not) without revealing it: Clerk's keys are long random strings, so the
// hash cannot be inverted or guessed, and the label keeps it from matching
// a plain SHA-256 of the key computed anywhere else.
func Fingerprint(secretKey string) string {
	sum := sha256.Sum256([]byte("clerkjobs rate budget\x00" + secretKey))
	return hex.EncodeToString(sum[:8])
}

// bucketTTL is how long an entry outlives its last update. A budget's
// state idle that long is no different from a fresh one (its schedule is in
// the past), and it outlives any pause (MaxPause is at most 5 min by
// default); dead members' heartbeats disappear with it.
const bucketTTL = 15 * time.Minute

// BucketConfig is the key-value bucket the budgets of every key live in:
// per key fingerprint one state entry ("<fingerprint>.state") and one
// heartbeat per member ("<fingerprint>.m.<member id>").
func BucketConfig(name string, replicas int, storage jetstream.StorageType) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       name,
		Description:  "Clerk rate budgets shared by the workers using the same secret key",
		History:      1,
		TTL:          bucketTTL,
		MaxValueSize: 1024,
		Storage:      storage,
		Replicas:     replicas,
	}
}

// Key names inside the bucket.
func stateKey(fp string) string          { return fp + ".state" }
func memberPrefix(fp string) string      { return fp + ".m." }
func memberKey(fp, member string) string { return memberPrefix(fp) + member }
func watchFilter(fp string) string       { return fp + ".>" }
func validFingerprint(fp string) bool {
	if fp == "" || len(fp) > 64 {
		return false
	}
	for _, c := range fp {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
