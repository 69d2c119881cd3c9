package ratebudget

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
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
	return hex.EncodeToString(sum[:fingerprintBytes])
}

// fingerprintBytes is what Fingerprint keeps of the hash: 16 hex digits.
const fingerprintBytes = 8

// CheckFingerprint says whether fp is a fingerprint as Fingerprint makes
// them, exactly: 16 lowercase hex digits. It names a key in the bucket, so
// anything else is refused, above all the secret key itself, passed by
// mistake. The error never quotes fp, which may be that key.
func CheckFingerprint(fp string) error {
	if !validFingerprint(fp) {
		return fmt.Errorf("rate budget: the fingerprint given (%d characters) is not one: want the %d hex digits of Fingerprint(secretKey), never the key itself", len(fp), 2*fingerprintBytes)
	}
	return nil
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
	return len(fp) == 2*fingerprintBytes && strings.Trim(fp, "0123456789abcdef") == ""
}
