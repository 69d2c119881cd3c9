package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"math/big"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

// signer holds the RSA key tokens are signed with. The key is generated on
// first use unless WithSigningKey gave one: most tests never sign a token
// and should not pay for a 2048-bit key.
type signer struct {
	once sync.Once
	key  *rsa.PrivateKey
	kid  string
	jwks []byte
	err  error
}

func (s *signer) init() error {
	s.once.Do(func() {
		if s.key == nil {
			s.key, s.err = rsa.GenerateKey(rand.Reader, 2048)
			if s.err != nil {
				return
			}
		}
		n := s.key.N.Bytes()
		sum := sha256.Sum256(n)
		kid := []byte("ins_")
		for _, b := range sum[:27] {
			kid = append(kid, base62[int(b)%len(base62)])
		}
		s.kid = string(kid)
		s.jwks, s.err = json.Marshal(map[string][]jwk{"keys": {{
			Use: "sig", Kty: "RSA", Kid: s.kid, Alg: "RS256",
			N: base64.RawURLEncoding.EncodeToString(n),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(s.key.E)).Bytes()),
		}}})
	})
	return s.err
}

type jwk struct {
	Use string `json:"use"`
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// PublicKey returns the public half of the signing key, to verify tokens
// in tests (GET /v1/jwks serves the same key).
func (e *Emulator) PublicKey() *rsa.PublicKey {
	if e.sign.init() != nil {
		return nil
	}
	return &e.sign.key.PublicKey
}

func (e *Emulator) signClaims(c jwt.MapClaims) (string, error) {
	if err := e.sign.init(); err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = e.sign.kid
	return t.SignedString(e.sign.key)
}

// tokenSubject is what a token is about, copied out of the store, with
// the session's status.
type tokenSubject struct {
	sessionID, userID, org string
	status                 clerkapi.SessionStatus
}

// claims are what every token carries: Clerk's default claims, but jti.
func (e *Emulator) claims(userID, azp string, iat time.Time, ttl time.Duration) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": e.issuer, "sub": userID, "azp": azp, "iat": iat.Unix(), "nbf": iat.Unix() - 10, "exp": iat.Add(ttl).Unix(),
	}
}

// sessionClaims are the claims of a session token, the kind
// CreateSessionToken and RefreshSession issue.
func (e *Emulator) sessionClaims(sub tokenSubject, azp string, iat time.Time, ttl time.Duration) jwt.MapClaims {
	c := e.claims(sub.userID, azp, iat, ttl)
	c["sid"], c["v"] = sub.sessionID, 2
	if sub.org != "" {
		c["o"] = map[string]any{"id": sub.org}
	}
	return c
}

// templateClaims are the claims of a JWT template token: the template's
// claims (with shortcodes replaced) under Clerk's default template claims.
func (e *Emulator) templateClaims(sub tokenSubject, t template, iat time.Time, ttl time.Duration) jwt.MapClaims {
	c := jwt.MapClaims{}
	for k, v := range t.claims {
		if s, ok := v.(string); ok {
			switch s {
			case "{{user.id}}":
				v = sub.userID
			case "{{session.id}}":
				v = sub.sessionID
			case "{{org.id}}":
				v = sub.org
			}
		}
		c[k] = v
	}
	maps.Copy(c, e.claims(sub.userID, azp, iat, ttl))
	c["jti"] = e.randString(20)
	return c
}

// SessionToken signs a session token for the session, valid for ttl from
// now; ttl <= 0 gives a token that expired -ttl ago (its iat a minute
// before that), which is what RefreshSession expects as expired_token. It
// returns "" for an unknown session or if signing fails. The session's
// status does not matter.
func (e *Emulator) SessionToken(sessionID string, ttl time.Duration) string {
	sub, ok := lookup(e, e.st.sessions, sessionID, subjectOf)
	if !ok {
		return ""
	}
	now := e.now()
	iat := now
	if ttl <= 0 {
		iat = now.Add(ttl - DefaultTokenLifetime)
		ttl = DefaultTokenLifetime
	}
	tok, err := e.signClaims(e.sessionClaims(sub, azp, iat, ttl))
	if err != nil {
		return ""
	}
	return tok
}

func subjectOf(r *sessionRec) tokenSubject {
	sub := tokenSubject{sessionID: r.s.ID, userID: r.s.UserID, status: r.s.Status}
	if r.s.LastActiveOrganizationID != nil {
		sub.org = *r.s.LastActiveOrganizationID
	}
	return sub
}

// errTokenSession is returned by checkExpiredToken for a token that is
// valid but names another session.
var errTokenSession = errors.New("token belongs to another session")

// checkExpiredToken verifies that tok was signed by this emulator for the
// session. Expiry is not checked: the token is expected to have expired.
func (e *Emulator) checkExpiredToken(tok, sessionID string) error {
	if err := e.sign.init(); err != nil {
		return err
	}
	parsed, err := jwt.Parse(tok, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != e.sign.kid {
			return nil, errors.New("unknown kid")
		}
		return &e.sign.key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return err
	}
	claims, _ := parsed.Claims.(jwt.MapClaims)
	if sid, _ := claims["sid"].(string); sid != sessionID {
		return errTokenSession
	}
	return nil
}
