package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/clerkjobs/clerkjobs/clerkapi"
)

const controlPrefix = "/_emulator"

// maxControlCount bounds how many users or sessions one control request
// may create.
const maxControlCount = 1_000_000

// MarshalJSON writes Duration as a string ("1.5ms") and Time in RFC 3339.
func (c Call) MarshalJSON() ([]byte, error) {
	type plain Call
	return json.Marshal(struct {
		plain
		Duration string `json:"duration"`
	}{plain(c), c.Duration.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Call) UnmarshalJSON(b []byte) error {
	type plain Call
	var w struct {
		plain
		Duration string `json:"duration"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	d, err := parseDuration("duration", w.Duration)
	if err != nil {
		return err
	}
	*c = Call(w.plain)
	c.Duration = d
	return nil
}

// serveControl serves the control API; see the package documentation.
// Its answers are JSON; its errors use Clerk's errors body too.
func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request, escaped string) {
	parts, ok := splitPath(strings.Trim(escaped, "/"))
	if !ok {
		e.write(w, e.notFound("Unknown control path."))
		return
	}
	rep := e.control(r, parts)
	e.write(w, rep)
	e.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rep.status).Msg("clerk emulator control")
}

func (e *Emulator) control(r *http.Request, parts []string) reply {
	allow, handle := e.controlRoute(r, parts)
	switch {
	case handle == nil:
		return e.notFound("Unknown control path " + r.URL.Path + "; see the emulator package documentation.")
	case !slices.Contains(strings.Split(allow, ", "), r.Method):
		return e.methodNotAllowed(r, allow)
	}
	return handle()
}

// controlRoute returns the methods a control path accepts and its handler,
// nil for an unknown path.
func (e *Emulator) controlRoute(r *http.Request, parts []string) (allow string, handle func() reply) {
	ok := func(status int, body any) reply { return reply{status: status, body: body} }
	n := len(parts)
	switch {
	case n == 1 && parts[0] == "health":
		return "GET", func() reply { return ok(http.StatusOK, map[string]string{"status": "ok"}) }

	case n == 1 && parts[0] == "users":
		return "POST", func() reply { return ok(http.StatusCreated, map[string]string{"id": e.CreateUser()}) }

	case n == 3 && parts[0] == "users" && parts[1] != "" && parts[2] == "sessions":
		return "POST", func() reply {
			var in struct {
				Count *int `json:"count"`
			}
			if rep, good := e.decodeControl(r, &in); !good {
				return rep
			}
			count := 1
			if in.Count != nil {
				count = *in.Count
			}
			if count < 1 || count > maxControlCount {
				return e.paramValueInvalid("count", "count must be between 1 and "+strconv.Itoa(maxControlCount))
			}
			ids, refused, signedIn := e.signIn(parts[1], count)
			if !signedIn {
				return refused
			}
			return ok(http.StatusCreated, map[string][]string{"session_ids": ids})
		}

	case n == 2 && parts[0] == "users" && parts[1] != "":
		return "GET", func() reply {
			st, found := e.userState(parts[1])
			if !found {
				return e.userNotFound(parts[1])
			}
			return ok(http.StatusOK, st)
		}

	case n == 3 && parts[0] == "users" && parts[1] != "" && parts[2] == "failure":
		return "PUT", func() reply { return e.putFailure(r, func(status int) { e.FailUser(parts[1], status) }) }

	case n == 1 && parts[0] == "seed":
		return "POST", func() reply {
			var in struct {
				Users           int `json:"users"`
				SessionsPerUser int `json:"sessions_per_user"`
			}
			if rep, good := e.decodeControl(r, &in); !good {
				return rep
			}
			if in.Users < 1 || in.SessionsPerUser < 0 || in.Users*max(in.SessionsPerUser, 1) > maxControlCount {
				return e.paramValueInvalid("users", "users must be at least 1 and users × sessions_per_user at most "+strconv.Itoa(maxControlCount))
			}
			return ok(http.StatusCreated, map[string][]string{"user_ids": e.Seed(in.Users, in.SessionsPerUser)})
		}

	case n == 1 && parts[0] == "calls":
		return "GET, DELETE", func() reply {
			if r.Method == http.MethodDelete {
				e.ResetCalls()
				return reply{status: http.StatusNoContent}
			}
			return ok(http.StatusOK, map[string][]Call{"calls": e.Calls()})
		}

	case n == 1 && parts[0] == "faults":
		return "GET, PUT", func() reply {
			if r.Method == http.MethodPut {
				var f Faults
				if rep, good := e.decodeControl(r, &f); !good {
					return rep
				}
				if err := f.Validate(); err != nil {
					return e.fail(http.StatusUnprocessableEntity, "form_param_value_invalid", "is invalid", err.Error(), nil)
				}
				e.SetFaults(f)
			}
			return ok(http.StatusOK, e.Faults())
		}

	case n == 1 && parts[0] == "rate_limit":
		return "GET, PUT", func() reply {
			if r.Method == http.MethodPut {
				var in struct {
					Requests int     `json:"requests"`
					Window   string  `json:"window"`
					Mode     *string `json:"mode"` // absent: unchanged
				}
				if rep, good := e.decodeControl(r, &in); !good {
					return rep
				}
				d, err := parseDuration("window", in.Window)
				if err != nil || d < 0 {
					return e.paramValueInvalid("window", "window must be a duration such as \"10s\"")
				}
				if in.Mode != nil {
					m, err := ParseRateLimitMode(*in.Mode)
					if err != nil {
						return e.paramValueInvalid("mode", "mode must be \"fixed\" or \"sliding\"")
					}
					e.SetRateLimitMode(m)
				}
				e.SetRateLimit(in.Requests, d)
			}
			rn, rw := e.RateLimit()
			return ok(http.StatusOK, map[string]any{"requests": rn, "window": rw.String(), "mode": e.RateLimitMode()})
		}

	case n == 2 && parts[0] == "sessions" && parts[1] != "":
		return "GET", func() reply {
			st, found := lookup(e, e.st.sessions, parts[1], func(r *sessionRec) sessionState {
				return sessionState{Session: r.view(), RefreshToken: r.refresh, RevokeCount: r.revokes, FailStatus: e.st.failures[r.s.ID]}
			})
			if !found {
				return e.sessionNotFound(parts[1])
			}
			st.SessionToken = e.SessionToken(st.Session.ID, DefaultTokenLifetime)
			return ok(http.StatusOK, st)
		}

	case n == 3 && parts[0] == "sessions" && parts[1] != "" && parts[2] == "status":
		return "PUT", func() reply {
			var in struct {
				Status clerkapi.SessionStatus `json:"status"`
			}
			if rep, good := e.decodeControl(r, &in); !good {
				return rep
			}
			if !validStatus(in.Status, true) {
				return e.paramValueInvalid("status", "status must be a session status such as active, revoked or ended")
			}
			return e.sessionAfter(parts[1], "status", e.SetSessionStatus(parts[1], in.Status))
		}

	case n == 3 && parts[0] == "sessions" && parts[1] != "" && parts[2] == "clean_up":
		return "POST", func() reply { return e.sessionAfter(parts[1], "session_id", e.CleanUpSession(parts[1])) }

	case n == 3 && parts[0] == "sessions" && parts[1] != "" && parts[2] == "failure":
		return "PUT", func() reply { return e.putFailure(r, func(status int) { e.FailSession(parts[1], status) }) }
	}
	return "", nil
}

// sessionState is GET /_emulator/sessions/{id}: the session with what a
// demo needs to call RefreshSession.
type sessionState struct {
	Session      clerkapi.Session `json:"session"`
	RefreshToken string           `json:"refresh_token"`
	SessionToken string           `json:"session_token"`
	RevokeCount  int              `json:"revoke_count"`
	FailStatus   int              `json:"fail_status"`
}

// decodeControl reads a JSON control body strictly: unknown fields are an
// error, so that typos do not pass silently. An empty body leaves v as is.
func (e *Emulator) decodeControl(r *http.Request, v any) (reply, bool) {
	b, rep, ok := e.readBody(r)
	if !ok || len(b) == 0 {
		return rep, ok
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return e.bodyInvalid("Invalid JSON body: " + err.Error()), false
	}
	return reply{}, true
}

// sessionAfter is the answer to a control call about session id that ended
// with err: the session, 404 for an unknown one, else 422 about param.
func (e *Emulator) sessionAfter(id, param string, err error) reply {
	switch {
	case errors.Is(err, errNoSession):
		return e.sessionNotFound(id)
	case err != nil:
		return e.paramValueInvalid(param, err.Error())
	}
	s, _ := e.Session(id)
	return reply{status: http.StatusOK, body: s}
}

// putFailure serves PUT …/failure {"status":S}: set forces S on the session
// or user (0 clears it).
func (e *Emulator) putFailure(r *http.Request, set func(status int)) reply {
	var in struct {
		Status int `json:"status"`
	}
	if rep, good := e.decodeControl(r, &in); !good {
		return rep
	}
	if in.Status != 0 && (in.Status < 400 || in.Status > 599) {
		return e.paramValueInvalid("status", "status must be 0 (clear) or 400..599")
	}
	set(in.Status)
	return reply{status: http.StatusOK, body: map[string]int{"status": in.Status}}
}
