// Command smokecheck drives the compose stack from inside its network, the
// way a publishing service and an operator would under the users of
// deploy/nats/accounts.conf: it waits until every worker is ready, submits
// revoke jobs and a token job as tenant svc_a with the Go client and checks
// each answer and the emulator's sessions, checks that service B cannot
// listen on A's inbox nor A's job answer B's, dead-letters a job and finds
// it as service A and as the operator, and checks that the streams have
// three replicas. It exits 0 when all of that holds. smoke.sh runs it; it
// needs only the environment smoke.sh gives it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/clerkjobs/clerkjobs"
	"github.com/clerkjobs/clerkjobs/jobs"
)

func main() {
	natsURL := flag.String("nats", "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222", "NATS server URLs")
	control := flag.String("emulator", "http://clerk-emulator:8090/_emulator", "the Clerk emulator's control API")
	workers := flag.String("workers", "http://worker-1:9090,http://worker-2:9090", "the workers' metrics addresses, comma-separated")
	n := flag.Int("jobs", 20, "revoke jobs to submit")
	replicas := flag.Int("replicas", 3, "replicas every stream must have")
	timeout := flag.Duration("timeout", 3*time.Minute, "the whole check's time limit")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	s := &smoke{natsURL: *natsURL, control: strings.TrimSuffix(*control, "/"), http: &http.Client{Timeout: 5 * time.Second}}
	if err := s.run(ctx, strings.Split(*workers, ","), *n, *replicas); err != nil {
		fmt.Fprintf(os.Stderr, "smokecheck: FAILED: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("smokecheck: PASSED")
}

type smoke struct {
	natsURL string
	control string
	http    *http.Client
}

func step(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func (s *smoke) run(ctx context.Context, workers []string, n, replicas int) error {
	for _, w := range workers {
		if err := s.waitReady(ctx, strings.TrimSuffix(w, "/")+"/readyz"); err != nil {
			return err
		}
	}
	step("%d workers ready", len(workers))

	a, err := s.connect("svc_a", "_INBOX.svc_a")
	if err != nil {
		return err
	}
	defer a.Close()
	// Service A is a tenant: its user may publish only on
	// sessions.tenant.svc_a.*, and hear only _INBOX.svc_a.>.
	svcA, err := clerkjobs.NewClient(a, clerkjobs.WithTenant("svc_a"))
	if err != nil {
		return err
	}

	user, sessions, err := s.makeSessions(ctx, n+2)
	if err != nil {
		return err
	}
	step("emulator: user %s with %d sessions", user, len(sessions))

	// n revokes at once, each waiting for its answer.
	start := time.Now()
	results := make(chan result, n)
	for _, id := range sessions[:n] {
		go func() {
			r, err := svcA.Request(ctx, &jobs.RevokeArgs{SessionID: id})
			results <- result{r, err}
		}()
	}
	byWorker := map[string]int{}
	for range n {
		r := <-results
		if r.err != nil {
			return fmt.Errorf("service A's revoke: %w", r.err)
		}
		byWorker[r.Worker]++
	}
	for _, id := range sessions[:n] {
		var st struct {
			Session struct{ Status string }
		}
		if err := s.do(ctx, http.MethodGet, "/sessions/"+id, "", &st); err != nil {
			return err
		}
		if st.Session.Status != "revoked" {
			return fmt.Errorf("session %s is %q after its revoke succeeded", id, st.Session.Status)
		}
	}
	step("%d revokes succeeded in %s, by workers %v; the emulator shows them revoked", n, time.Since(start).Round(time.Millisecond), byWorker)

	// A token: only A's inbox ever gets it.
	tok, err := svcA.SessionToken(ctx, sessions[n], nil)
	if err != nil || strings.Count(tok.JWT(), ".") != 2 {
		return fmt.Errorf("token job: %v", err)
	}
	step("token job: service A got a JWT on its inbox")

	// Service B may not listen on A's inbox, and A's job cannot answer B's.
	b, err := s.connect("svc_b", "_INBOX.svc_b")
	if err != nil {
		return err
	}
	defer b.Close()
	bsub, _ := b.SubscribeSync("_INBOX.svc_a.>")
	if _, err := bsub.NextMsg(3 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
		return fmt.Errorf("service B subscribing to service A's inbox: %v, want a permissions violation", err)
	}
	steal := "smoke-steal-" + nuid.Next()
	if _, err := svcA.Submit(ctx, &jobs.TokenArgs{Common: jobs.Common{JobID: steal, ReplyTo: "_INBOX.svc_b.x"}, SessionID: sessions[n]}); err != nil {
		return err
	}
	_, err = svcA.Wait(ctx, steal)
	var failed *clerkjobs.JobError
	if !errors.As(err, &failed) || failed.Class != jobs.ClassInvalid || failed.Field != "/reply_to" {
		return fmt.Errorf("service A's token job replying to B's inbox: %v, want it dead-lettered as invalid", err)
	}
	step("service B cannot subscribe to service A's inbox; A's job replying to B's inbox was dead-lettered, and A read why")

	// A job Clerk refuses is dead-lettered: A is told, and finds it later
	// by its id; the operator finds it in the queue.
	failing := sessions[n+1]
	if err := s.do(ctx, http.MethodPut, "/sessions/"+failing+"/failure", `{"status":404}`, nil); err != nil {
		return err
	}
	jobID := "smoke-dlq-" + nuid.Next()
	_, err = svcA.RevokeSession(ctx, failing, &clerkjobs.RevokeOptions{JobID: jobID})
	if !errors.As(err, &failed) || failed.Class != jobs.ClassPermanent || failed.DeadLetterSeq == 0 {
		return fmt.Errorf("revoke of a failing session: %v; want a permanent failure", err)
	}
	if _, err := svcA.Wait(ctx, jobID); !errors.As(err, &failed) || failed.Class != jobs.ClassPermanent {
		return fmt.Errorf("service A waiting for its failed job again: %v", err)
	}
	ops, err := s.connect("ops", "_INBOX.ops")
	if err != nil {
		return err
	}
	defer ops.Close()
	ojs, _ := jetstream.New(ops)
	found, err := findDeadLetter(ctx, ojs, jobID)
	if err != nil || !found {
		return fmt.Errorf("ops looking for dead letter %s: found %v, %v", jobID, found, err)
	}
	step("a revoke Clerk refused (404) went to the DLQ (seq %d): service A was told and found it again, and ops read it there", failed.DeadLetterSeq)

	// Every stream is replicated as configured, every replica current.
	for _, name := range []string{"SESSION_JOBS", "SESSION_RESULTS", "SESSION_DLQ"} {
		st, err := ojs.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s info as ops: %w", name, err)
		}
		info := st.CachedInfo()
		if info.Config.Replicas != replicas || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != replicas-1 {
			return fmt.Errorf("stream %s: replicas %d, cluster %+v; want %d replicas", name, info.Config.Replicas, info.Cluster, replicas)
		}
		peers := []string{info.Cluster.Leader}
		for _, p := range info.Cluster.Replicas {
			if !p.Current || p.Offline {
				return fmt.Errorf("stream %s: replica %s is not current", name, p.Name)
			}
			peers = append(peers, p.Name)
		}
		slices.Sort(peers)
		step("stream %s: %d replicas on %v, leader %s", name, replicas, peers, info.Cluster.Leader)
	}
	return nil
}

func (s *smoke) connect(user, inboxPrefix string) (*nats.Conn, error) {
	pw := os.Getenv("CLERKJOBS_" + strings.ToUpper(user) + "_PASSWORD")
	nc, err := nats.Connect(s.natsURL, nats.UserInfo(user, pw), nats.CustomInboxPrefix(inboxPrefix),
		nats.PermissionErrOnSubscribe(true), nats.Name("smokecheck "+user),
		// Refusals are expected here and checked where they happen.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		return nil, fmt.Errorf("connect as %s: %w", user, err)
	}
	return nc, nil
}

// waitReady polls a worker's /readyz until it answers 200.
func (s *smoke) waitReady(ctx context.Context, url string) error {
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := s.http.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %s", url, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (s *smoke) makeSessions(ctx context.Context, n int) (string, []string, error) {
	var u struct{ ID string }
	if err := s.do(ctx, http.MethodPost, "/users", `{}`, &u); err != nil {
		return "", nil, err
	}
	var ss struct {
		SessionIDs []string `json:"session_ids"`
	}
	if err := s.do(ctx, http.MethodPost, "/users/"+u.ID+"/sessions", fmt.Sprintf(`{"count":%d}`, n), &ss); err != nil {
		return "", nil, err
	}
	if len(ss.SessionIDs) != n {
		return "", nil, fmt.Errorf("emulator made %d sessions, want %d", len(ss.SessionIDs), n)
	}
	return u.ID, ss.SessionIDs, nil
}

// do calls the emulator's control API, decoding its answer into out (if
// not nil).
func (s *smoke) do(ctx context.Context, method, path, body string, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.control+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("emulator %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// result is the answer of one request.
type result struct {
	*clerkjobs.Result
	err error
}

// findDeadLetter scans the DLQ as the operator does (an ordered consumer).
func findDeadLetter(ctx context.Context, js jetstream.JetStream, jobID string) (bool, error) {
	st, err := js.Stream(ctx, "SESSION_DLQ")
	if err != nil {
		return false, err
	}
	total := st.CachedInfo().State.Msgs
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return false, err
	}
	for i := uint64(0); i < total; i++ {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return false, err
		}
		if m.Headers().Get(jobs.HeaderJobID) == jobID {
			return true, nil
		}
	}
	return false, nil
}
