package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// ---- compare: this worker against another build ----

// compare runs the overhead closed loop through the baseline binary
// (Options.BaselineBin) and through the worker under test, in turns, at
// each overhead concurrency: the same machine, the same minutes, so the
// two are comparable where numbers from two days are not.
func (e *env) compare(ctx context.Context, sz sizes, rep *Report) error {
	for _, c := range sz.overheadConc {
		m, err := medians(sz.overheadRepeats, []flow{
			{fmt.Sprintf("baseline worker, concurrency %d", c), func() (Row, error) {
				return e.overheadRun(ctx, "compare", sz, workerSpec{Concurrency: c, Bin: e.opts.BaselineBin})
			}},
			{fmt.Sprintf("worker, concurrency %d", c), func() (Row, error) { return e.overheadRun(ctx, "compare", sz, workerSpec{Concurrency: c}) }},
		}, func(run int, r []Row) {
			e.logf("compare c=%d run %d: baseline %.0f/s %.0f µs/job, this %.0f/s %.0f µs/job", c, run, r[0].JobsPerS, r[0].WorkerCPUUS, r[1].JobsPerS, r[1].WorkerCPUUS)
		})
		if err != nil {
			return err
		}
		b, w := m[0], m[1]
		b.Name, w.Name = "baseline", "this build"
		w.Ideal, w.Ratio = b.JobsPerS, ratio(w.JobsPerS, b.JobsPerS)
		rep.Rows = append(rep.Rows, b, w)
		// "No worse", within the spread two runs of the same build show
		// on a shared machine.
		rep.Targets = append(rep.Targets, Target{Scenario: "compare",
			Goal: fmt.Sprintf("concurrency %d: jobs/s ≥ 97%% of the baseline's and worker CPU per job ≤ 103%%", c),
			Measured: fmt.Sprintf("%.0f against %.0f jobs/s (%.0f%%); %.0f against %.0f µs/job (%.0f%%)",
				w.JobsPerS, b.JobsPerS, 100*w.JobsPerS/b.JobsPerS, w.WorkerCPUUS, b.WorkerCPUUS, 100*w.WorkerCPUUS/b.WorkerCPUUS),
			Met: w.JobsPerS >= 0.97*b.JobsPerS && w.WorkerCPUUS <= 1.03*b.WorkerCPUUS})
		if c == 1 {
			rep.Targets = append(rep.Targets, Target{Scenario: "compare",
				Goal:     "concurrency 1: p50 latency (job stored → result stored) lower than the baseline's",
				Measured: fmt.Sprintf("%.2f ms against %.2f ms", w.P50MS, b.P50MS),
				Met:      w.P50MS < b.P50MS})
		}
	}
	return nil
}

// ---- tracing: what OpenTelemetry costs per job ----

// tracingConc is the concurrency of the tracing scenario: enough jobs in
// flight to keep the worker busy, few enough that the exporter's default
// queue can keep up at 100% sampling.
const tracingConc = 16

// tracing runs the overhead closed loop with tracing off, sampled at 1%
// and at 100%, in turns, exporting over OTLP/HTTP to a receiver in the
// bench process that decodes and counts the spans (so the export's whole
// cost is paid, and spans dropped by a full queue show).
func (e *env) tracing(ctx context.Context, sz sizes, rep *Report) error {
	sink, err := startSpanSink()
	if err != nil {
		return err
	}
	defer sink.srv.Close()
	traced := func(name string, env []string) flow {
		return flow{"tracing " + name, func() (Row, error) {
			before := sink.spans.Load()
			r, err := e.overheadRun(ctx, "tracing", sz, workerSpec{Concurrency: tracingConc, Env: env})
			r.Name = name
			// Spans of the whole run (warm-up included, and what the
			// worker flushed as it stopped) per job measured.
			r.Note = fmt.Sprintf("%.2f spans exported per job", float64(sink.spans.Load()-before)/float64(max(r.Jobs, 1)))
			return r, err
		}}
	}
	runs := []flow{traced("off", nil), traced("sampled 1%", sink.env("0.01")), traced("sampled 100%", sink.env("1"))}
	rows, err := medians(sz.overheadRepeats, runs, func(run int, rows []Row) {
		for _, r := range rows {
			e.logf("tracing %s run %d: %.0f jobs/s, %.0f µs/job; %s", r.Name, run, r.JobsPerS, r.WorkerCPUUS, r.Note)
		}
	})
	if err != nil {
		return err
	}
	for _, r := range rows {
		r.Ideal, r.Ratio = rows[0].WorkerCPUUS, ratio(r.WorkerCPUUS, rows[0].WorkerCPUUS)
		rep.Rows = append(rep.Rows, r)
	}
	if sink.failed.Load() > 0 {
		return fmt.Errorf("the span receiver could not decode %d exports", sink.failed.Load())
	}
	return nil
}

// spanSink is an OTLP/HTTP trace receiver that counts spans.
type spanSink struct {
	srv    *http.Server
	url    string
	spans  atomic.Int64
	failed atomic.Int64
}

func startSpanSink() (*spanSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &spanSink{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.receive)}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *spanSink) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		s.failed.Add(1)
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			s.spans.Add(int64(len(ss.GetSpans())))
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// env is a worker's environment for exporting to the sink with a ratio
// sampler.
func (s *spanSink) env(ratio string) []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + s.url,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_TRACES_SAMPLER=parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG=" + ratio,
	}
}
