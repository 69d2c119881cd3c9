package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// benchSize is how many dead letters the benchmarks store: 100,000, or
// CONSOLE_BENCH_DEAD_LETTERS.
func benchSize(b *testing.B) int {
	n := 100_000
	if s := os.Getenv("CONSOLE_BENCH_DEAD_LETTERS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("CONSOLE_BENCH_DEAD_LETTERS=%q: want a positive count", s)
		}
		n = v
	}
	return n
}

// production gives the dead-letter stream its production size (1 GiB; the
// test topology's 64 MiB holds fewer than 100,000).
func production(b *testing.B, env *testenv.Env) {
	b.Helper()
	env.Topology.DeadLetterMaxBytes = jobs.DefaultTopology().DeadLetterMaxBytes
	if _, err := env.Topology.Ensure(b.Context(), env.JS); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPages measures the console's pages with a large dead-letter
// queue: mixed ops and classes, realistic headers. Each sub-benchmark is
// one page over HTTP, rendered from the in-memory index.
//
//	go test -run '^$' -bench BenchmarkPages -benchtime 50x ./internal/console
func BenchmarkPages(b *testing.B) {
	n := benchSize(b)
	env := testenv.New(b)
	production(b, env)
	subj := env.Topology.Subjects
	ops := []jobs.Op{jobs.OpRevoke, jobs.OpRevoke, jobs.OpRevoke, jobs.OpGet, jobs.OpToken}
	classes := []jobs.ErrorClass{jobs.ClassExhausted, jobs.ClassExhausted, jobs.ClassPermanent, jobs.ClassMaxDeliveries, jobs.ClassInvalid}
	start := time.Now().Add(-time.Hour)
	seed(b, env.JS, n, func(i int) *nats.Msg {
		op, class := ops[i%len(ops)], classes[(i/len(ops))%len(classes)]
		id := fmt.Sprintf("job-%d", i)
		return deadLetter(subj, op, class, id, testenv.JobBody(op, id), start.Add(time.Duration(i)*time.Millisecond))
	})

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	con := startConsole(b, env.NATSURL)
	con.waitIndexed(b, 10*time.Minute)
	built := time.Since(t0)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.Logf("%d dead letters: index built in %s; heap grew %.1f MiB (console and its NATS client)", n, built.Round(time.Millisecond),
		float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))

	pages := []struct{ name, path string }{
		{"overview", "/"},
		{"list", "/dlq"},
		{"list-filtered", "/dlq?op=revoke&class=exhausted&since=24h"},
		{"list-rare", "/dlq?job-id=job-" + strconv.Itoa(n/2)},
		{"list-deep-page", "/dlq?class=permanent&before=" + strconv.Itoa(n/10)},
		{"list-500", "/dlq?n=500"},
		{"entry", "/dlq/" + strconv.Itoa(n/2)},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(con.URL + p.path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", p.path, resp.StatusCode)
				}
			}
		})
	}
	b.ReportMetric(built.Seconds(), "index-build-s")
}

// BenchmarkReplayAllMatching replays every dead letter of a large queue
// from the console (plan, dry run, confirmation, run) while a worker runs
// the jobs against the emulator, and checks that all of them succeeded.
// One iteration is the whole replay:
//
//	go test -run '^$' -bench BenchmarkReplayAllMatching -benchtime 1x -timeout 30m ./internal/console
func BenchmarkReplayAllMatching(b *testing.B) {
	n := benchSize(b)
	for range b.N {
		b.StopTimer()
		env := testenv.New(b)
		production(b, env)
		emu := env.Clerk.Emulator
		sessions := emu.CreateSessions(emu.CreateUser(), n)
		seedRevokes(b, env, sessions, 0)
		env.StartWorker(b)
		con := startConsole(b, env.NATSURL)
		con.waitIndexed(b, 10*time.Minute)
		b.StartTimer()

		t0 := time.Now()
		task := replayAll(b, con, url.Values{"class": {"exhausted"}}, n, 30*time.Minute)
		replayed := time.Since(t0)
		testenv.Eventually(b, 30*time.Minute, "every job succeeded", func() bool {
			return env.StreamCount(b, env.Topology.ResultsStream) == uint64(n)
		})
		ran := time.Since(t0)

		b.StopTimer()
		if left := env.StreamCount(b, env.Topology.DeadLetterStream); left != 0 {
			b.Fatalf("%d dead letters left", left)
		}
		con.waitPage(b, time.Minute, "/dlq", regexp.MustCompile(`<strong>0</strong> dead letters`))
		_, page := con.get(b, task)
		m := regexp.MustCompile(`took ([^<]+?)</p>`).FindStringSubmatch(page)
		took := "?"
		if m != nil {
			took = m[1]
		}
		b.Logf("%d dead letters: dry run and replay %s (the replay itself %s), all %d jobs succeeded after %s", n, replayed.Round(time.Millisecond), took, n, ran.Round(time.Millisecond))
		b.ReportMetric(float64(n)/replayed.Seconds(), "replayed/s")
		b.ReportMetric(replayed.Seconds(), "replay-s")
		b.StartTimer()
	}
}
