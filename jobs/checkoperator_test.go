package jobs

import (
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestCheckSaysWhereAJWTAccountGetsJetStream: a server in operator mode
// (accounts as JWTs, managed with nsc) enables JetStream for an account
// through the account's JWT, not through an accounts block in its
// configuration. The hint for an account without JetStream sent its
// operator to a block that operator mode has no use for.
func TestCheckSaysWhereAJWTAccountGetsJetStream(t *testing.T) {
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	resolver := &server.MemAccResolver{}
	account := func() (nkeys.KeyPair, string) {
		akp, _ := nkeys.CreateAccount()
		apub, _ := akp.PublicKey()
		ajwt, err := jwt.NewAccountClaims(apub).Encode(okp) // no JetStream limits: none
		if err != nil {
			t.Fatal(err)
		}
		if err := resolver.Store(apub, ajwt); err != nil {
			t.Fatal(err)
		}
		return akp, apub
	}
	_, sys := account()
	akp, apub := account()
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.IssuerAccount = apub
	ujwt, err := uc.Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	js := jetStreamOn(t, &server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, JetStream: true, StoreDir: t.TempDir(),
		TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver, SystemAccount: sys,
	}, nats.UserJWT(func() (string, error) { return ujwt, nil }, func(nonce []byte) ([]byte, error) { return ukp.Sign(nonce) }))
	_, err = DefaultTopology().Check(testContext(t), js)
	if want := "nsc edit account"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Check as a user of a JWT account without JetStream: %v; want it to say %q", err, want)
	}
}
