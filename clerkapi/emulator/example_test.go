package emulator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/clerkjobs/clerkjobs/clerkapi"
	"github.com/clerkjobs/clerkjobs/clerkapi/emulator"
)

// A test starts an emulator, creates a user with sessions, and points the
// typed client at it.
func ExampleNewServer() {
	srv := emulator.NewServer()
	defer srv.Close()

	user := srv.Emulator.CreateUser()
	ids := srv.Emulator.CreateSessions(user, 3)

	c, err := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	s, err := c.RevokeSession(ctx, ids[0])
	if err != nil {
		panic(err)
	}
	fmt.Println("status:", s.Status)

	list, _ := c.ListSessions(ctx, clerkapi.ListParams{UserID: user, Status: clerkapi.StatusActive, Paginated: true})
	fmt.Println("still active:", list.TotalCount)
	fmt.Println("revoke calls answered 200:", srv.Emulator.RevokeCount(ids[0]))
	// Output:
	// status: revoked
	// still active: 2
	// revoke calls answered 200: 1
}

// FailSession simulates a permanent failure for one session, and Calls
// shows what the client sent.
func ExampleEmulator_FailSession() {
	srv := emulator.NewServer()
	defer srv.Close()
	id := srv.Emulator.CreateSessions("user_example", 1)[0]
	srv.Emulator.FailSession(id, http.StatusUnprocessableEntity)

	c, _ := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))
	_, err := c.RevokeSession(context.Background(), id)
	fmt.Println("class:", clerkapi.ClassOf(err))

	for _, call := range srv.Emulator.Calls() {
		fmt.Println(call.Method, call.Op, call.Status, call.Fault)
	}
	// Output:
	// class: permanent
	// POST RevokeSession 422 fail_session
}

// Faults make the emulator slow, flaky or rate limited; the client sorts
// what happens into classes a retry policy can use.
func ExampleEmulator_SetFaults() {
	srv := emulator.NewServer(emulator.WithRateLimit(1, 10*time.Second))
	defer srv.Close()
	id := srv.Emulator.CreateSessions("user_example", 1)[0]
	c, _ := clerkapi.New(clerkapi.WithBaseURL(srv.URL), clerkapi.WithSecretKey(emulator.DefaultSecretKey))
	ctx := context.Background()

	_, err := c.GetSession(ctx, id)
	fmt.Println("first call:", err)
	_, err = c.GetSession(ctx, id)
	fmt.Println("second call:", clerkapi.ClassOf(err), "retry after", clerkapi.RetryAfterOf(err))

	srv.Emulator.SetRateLimit(0, 0)
	srv.Emulator.SetFaults(emulator.Faults{RejectKey: true})
	_, err = c.GetSession(ctx, id)
	fmt.Println("revoked key:", clerkapi.ClassOf(err))
	// Output:
	// first call: <nil>
	// second call: retryable retry after 10s
	// revoked key: systemic
}

// The control API offers the same controls over HTTP, for demos and for
// tests written in other languages.
func ExampleEmulator_ServeHTTP_controlAPI() {
	srv := emulator.NewServer(emulator.WithSeed(1))
	defer srv.Close()

	post := func(path, body string) string {
		resp, err := http.Post(srv.ControlURL+path, "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprint(resp.StatusCode, " ", strings.TrimSpace(string(b)))
	}
	fmt.Println(post("/users/user_demo/sessions", `{"count":2}`)[:len("201 {\"session_ids\":[\"sess_")])

	req, _ := http.NewRequest(http.MethodPut, srv.ControlURL+"/faults", strings.NewReader(`{"error_rate":0.1,"latency":"20ms"}`))
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	fmt.Println(srv.Emulator.Faults().Latency, len(srv.Emulator.UserSessionIDs("user_demo")))
	// Output:
	// 201 {"session_ids":["sess_
	// 20ms 2
}
