package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clerkjobs/clerkjobs/internal/natscluster"
)

// When a scenario fails, the log says what an operator would have looked
// at: how each node saw the scenario's streams over time (leader, replicas
// not current), whether a stream info request entering through each node is
// answered, and each worker's /readyz and last log lines.

// jszView is the part of a node's /jsz the diagnostics read.
type jszView struct {
	Meta *struct {
		Leader string `json:"leader"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Streams []struct {
			Name    string        `json:"name"`
			Cluster *jszClusterIn `json:"cluster"`
			State   struct {
				Msgs    uint64 `json:"messages"`
				LastSeq uint64 `json:"last_seq"`
			} `json:"state"`
			Consumers []struct {
				Name          string        `json:"name"`
				Cluster       *jszClusterIn `json:"cluster"`
				NumAckPending int           `json:"num_ack_pending"`
				NumPending    uint64        `json:"num_pending"`
			} `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

type jszClusterIn struct {
	Leader   string `json:"leader"`
	Replicas []struct {
		Name    string        `json:"name"`
		Current bool          `json:"current"`
		Offline bool          `json:"offline"`
		Active  time.Duration `json:"active"`
		Lag     uint64        `json:"lag"`
	} `json:"replicas"`
}

// summary is one line for the scenario's streams and their consumers, in a
// fixed order: the leader as this node sees it and the replicas it reports
// offline. full adds the replicas not current (with lag and when last
// seen) and the counts, for the failure dump; without them the line changes
// only when leadership does, for the timeline (currency flaps under load).
func (j *jszView) summary(streams []string, full bool) string {
	var b strings.Builder
	if j.Meta != nil {
		fmt.Fprintf(&b, "meta leader %q", j.Meta.Leader)
	}
	for _, name := range streams {
		found := false
		for _, a := range j.Accounts {
			for _, st := range a.Streams {
				if st.Name != name {
					continue
				}
				found = true
				fmt.Fprintf(&b, "; %s %s", st.Name, st.Cluster.describe(full))
				if full {
					fmt.Fprintf(&b, " msgs=%d last_seq=%d", st.State.Msgs, st.State.LastSeq)
				}
				for _, c := range st.Consumers {
					fmt.Fprintf(&b, "; consumer %s %s", c.Name, c.Cluster.describe(full))
					if full {
						fmt.Fprintf(&b, " pending=%d ack_pending=%d", c.NumPending, c.NumAckPending)
					}
				}
			}
		}
		if !found {
			fmt.Fprintf(&b, "; %s not on this node", name)
		}
	}
	return b.String()
}

func (c *jszClusterIn) describe(full bool) string {
	if c == nil {
		return "leader \"\" (no cluster info)"
	}
	var behind []string
	for _, r := range c.Replicas {
		switch {
		case r.Offline:
			behind = append(behind, r.Name+" offline")
		case !r.Current && full:
			behind = append(behind, fmt.Sprintf("%s not current (lag %d, seen %s ago)", r.Name, r.Lag, r.Active.Round(time.Millisecond)))
		}
	}
	if len(behind) == 0 {
		return fmt.Sprintf("leader %q", c.Leader)
	}
	return fmt.Sprintf("leader %q, %s", c.Leader, strings.Join(behind, ", "))
}

var monitorClient = &http.Client{Timeout: 3 * time.Second}

// httpGet returns a URL's status and body, or the error as the body.
func httpGet(url string) (int, string) {
	res, err := monitorClient.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return res.StatusCode, err.Error()
	}
	return res.StatusCode, strings.TrimSpace(string(body))
}

func readJsz(n *natscluster.Node) (*jszView, error) {
	code, body := httpGet(n.MonitorURL() + "/jsz?accounts=true&streams=true&consumers=true")
	if code != http.StatusOK {
		return nil, fmt.Errorf("/jsz: %d %s", code, body)
	}
	var j jszView
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return nil, fmt.Errorf("/jsz: %w", err)
	}
	return &j, nil
}

func (s *system) streamNames() []string {
	return []string{s.topo.JobsStream, s.topo.ResultsStream, s.topo.DeadLetterStream}
}

// timeline is a list of timestamped changes.
type timeline struct {
	mu    sync.Mutex
	lines []string
}

func (tl *timeline) add(line string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.lines = append(tl.lines, time.Now().Format("15:04:05.000")+" "+line)
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return strings.Join(tl.lines, "\n")
}

// watch records, twice a second until ctx ends, each node's view of the
// scenario's streams in s.clusterView and each worker's /readyz in
// s.readiness, whenever they change.
func (s *system) watch(ctx context.Context) {
	last := map[string]string{}
	for ctx.Err() == nil {
		for _, n := range s.cluster.Nodes() {
			line := "unreachable"
			if j, err := readJsz(n); err == nil {
				line = j.summary(s.streamNames(), false)
			}
			if last[n.Name()] != line {
				last[n.Name()] = line
				s.clusterView.add(n.Name() + ": " + line)
			}
		}
		s.mu.Lock()
		workers := slices.Clone(s.workers)
		s.mu.Unlock()
		for _, w := range workers {
			line, key := w.readiness()
			if last["worker "+w.name] != key {
				last["worker "+w.name] = key
				s.readiness.add("worker " + w.name + ": " + line)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

var digits = regexp.MustCompile(`[0-9]+`)

// readiness is the worker's /readyz as a line, and a key that changes only
// when readiness or the kind of reason does (not with every job id in it).
func (w *workerProc) readiness() (line, key string) {
	w.mu.Lock()
	url := w.readyURL
	w.mu.Unlock()
	if url == "" {
		return "(no metrics address logged)", ""
	}
	code, body := httpGet(url)
	var st struct {
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
	}
	if json.Unmarshal([]byte(body), &st) != nil {
		return fmt.Sprintf("%d %s", code, body), fmt.Sprintf("%d %s", code, digits.ReplaceAllString(body, "N"))
	}
	line = fmt.Sprintf("%d ready=%t %s", code, st.Ready, st.Reason)
	return line, fmt.Sprintf("%d %t %s", code, st.Ready, digits.ReplaceAllString(st.Reason, "N"))
}

// diagnose logs the failure dump once; the first cleanup of a failed test
// calls it, while the workers and nodes still run.
func (s *system) diagnose() {
	s.diagnoseOnce.Do(func() {
		var b strings.Builder
		fmt.Fprintf(&b, "diagnostics at %s\n", time.Now().Format("15:04:05.000"))
		fmt.Fprintf(&b, "--- each node's view of the streams, when it changed\n%s\n", &s.clusterView)
		fmt.Fprintf(&b, "--- each worker's /readyz, when it changed\n%s\n", &s.readiness)
		for _, n := range s.cluster.Nodes() {
			code, body := httpGet(n.MonitorURL() + "/healthz")
			fmt.Fprintf(&b, "--- node %s: /healthz %d %s\n", n.Name(), code, body)
			if j, err := readJsz(n); err != nil {
				fmt.Fprintf(&b, "  %v\n", err)
			} else {
				fmt.Fprintf(&b, "  /jsz: %s\n", j.summary(s.streamNames(), true))
			}
			fmt.Fprintf(&b, "  stream info through %s: %s\n", n.Name(), s.streamInfoVia(n))
		}
		s.mu.Lock()
		workers := slices.Clone(s.workers)
		s.mu.Unlock()
		for _, w := range workers {
			line, _ := w.readiness()
			fmt.Fprintf(&b, "--- worker %s: /readyz %s; last lines other than successes:\n%s\n", w.name, line, w.notable(15))
		}
		s.t.Log(b.String())
	})
}

// streamInfoVia asks for each stream's info through a client of one node
// only: the leader answers, wherever it is, if the request reaches it.
func (s *system) streamInfoVia(n *natscluster.Node) string {
	nc, err := nats.Connect(n.URL(), nats.Timeout(5*time.Second), nats.IgnoreDiscoveredServers(), nats.NoReconnect())
	if err != nil {
		return "connect: " + err.Error()
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, name := range s.streamNames() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		str, err := js.Stream(ctx, name)
		cancel()
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		info := str.CachedInfo()
		leader := ""
		if info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		out = append(out, fmt.Sprintf("%s: leader %q msgs=%d", name, leader, info.State.Msgs))
	}
	return strings.Join(out, "; ")
}

// notable returns the last n log lines of the worker that are not a job's
// success: warnings, errors, retries, reconnections.
func (w *workerProc) notable(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for i := len(w.logs) - 1; i >= 0 && len(out) < n; i-- {
		if !strings.Contains(w.logs[i], `"outcome":"succeeded"`) {
			out = append(out, w.logs[i])
		}
	}
	slices.Reverse(out)
	return strings.Join(out, "\n")
}
