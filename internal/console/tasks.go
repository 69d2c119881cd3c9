package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/clerkjobs/clerkjobs/dlq"
	"github.com/clerkjobs/clerkjobs/jobs"
)

// Kinds of action.
type actionKind string

const (
	actReplay    actionKind = "replay"
	actPurge     actionKind = "purge"
	actRevokeAll actionKind = "revoke_all"
)

// plan is an action chosen and not yet confirmed: exactly what will be
// done (the dead letters selected when it was made, never ones that arrive
// later), and for a replay the dry run of every one of them. Confirming
// runs it as a task.
type plan struct {
	ID      string
	Kind    actionKind
	Created time.Time
	By      string // who asked: user and address
	// Scope describes the selection for people: "dead letter 42", "3
	// selected", "all matching class=exhausted".
	Scope string
	// Query is the list filter the selection came from ("" for explicit
	// sequences), to go back to the list.
	Query string
	Seqs  []uint64
	// Seen binds each sequence to the dead letter the operator chose (when
	// it was stored, its job id): a sequence whose letter is not that one
	// any more (the stream was recreated and numbers letters anew) is
	// skipped and reported, never replayed or purged. A sequence missing
	// from Seen was not in the queue when planned, and is skipped too.
	Seen map[uint64]seen
	// Kinds counts the selected dead letters per op/class.
	Kinds map[string]int
	// RevokeAll is the job a revoke_all plan submits.
	RevokeAll *jobs.RevokeAllArgs

	mu sync.Mutex
	// check is the replay's dry run; run the task that carries the plan
	// out, once confirmed.
	check, run *task
}

func (p *plan) tasks() (check, run *task) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.check, p.run
}

// claim makes t the plan's run, unless it has one already (a confirmation
// sent twice): then it returns that one.
func (p *plan) claim(t *task) (*task, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		return p.run, false
	}
	p.run = t
	return t, true
}

// release undoes claim when t could not start.
func (p *plan) release(t *task) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == t {
		p.run = nil
	}
}

type taskState string

const (
	taskRunning taskState = "running"
	taskDone    taskState = "done"
	taskStopped taskState = "stopped"
	taskFailed  taskState = "failed"
)

// task is an action running or finished. ID, Kind, DryRun and Plan are
// set once, before it starts; the other fields are guarded by mu, and
// pages read a copy (view).
type task struct {
	taskView
	mu     sync.Mutex
	cancel context.CancelFunc
}

// taskView is a consistent copy of a task for a page.
type taskView struct {
	ID       string
	Kind     actionKind
	DryRun   bool
	Plan     *plan
	State    taskState
	Total    int
	Done     int
	Started  time.Time
	Finished time.Time
	Replay   *dlq.ReplayReport
	Purge    *dlq.PurgeReport
	Rate     float64
	Bulk     revokeAllUpdate // the latest of each kind of update
	Err      string
}

func (t *task) view() taskView {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Err and the reports' problems are kept scrubbed (finish,
	// fewProblems).
	v := t.taskView
	if res := v.Bulk.Result; res != nil && res.Error != nil {
		cp, e := *res, scrubError(*res.Error)
		cp.Error = &e
		v.Bulk.Result = &cp
	}
	return v
}

// running reports whether t has started and not ended, cheaply: the
// registry asks it of every task it keeps.
func (t *task) running() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.State == taskRunning
}

func (t *task) step() {
	t.mu.Lock()
	t.Done++
	t.mu.Unlock()
}

// finish records how the task ended.
func (t *task) finish(ctx context.Context, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Finished = time.Now()
	switch {
	case err == nil:
		t.State = taskDone
		return
	case ctx.Err() == nil:
		t.State, t.Err = taskFailed, scrub(err.Error())
		return
	}
	t.State = taskStopped
	switch {
	case t.Kind == actRevokeAll && t.Bulk.Ack != nil:
		// Stopping stops the following, not the job: the workers go on.
		t.Err = "no longer followed here; the job itself goes on in the workers (revoke_all jobs in progress, on the overview)"
	case t.Kind == actRevokeAll:
		t.Err = "stopped before JetStream acknowledged the job: it may not have been sent; look for it under revoke_all jobs in progress on the overview, or revoke all sessions of the user again"
	case t.DryRun:
		// A dry run is not continued: its plan is never confirmed.
		t.Err = errDryRunStopped.Error()
	default:
		t.Err = "stopped before the end: continue it to do what is left"
	}
}

func (t *task) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancel != nil {
		t.cancel()
	}
}

// registry keeps plans and tasks in memory: a console that restarts
// forgets them, and an action it was running is continued by choosing the
// same selection again (replay ids make that safe).
type registry struct {
	mu    sync.Mutex
	plans map[string]*plan
	tasks map[string]*task
	order []*task // newest last
}

// maxKept bounds the plans and finished tasks kept.
const maxKept = 200

// maxRunning bounds the actions running at once, dry runs included: each
// reads (and a replay or purge writes) up to every dead letter, and every
// "replay matching" starts a dry run, so a page posted in a loop would
// otherwise start one reader of the whole queue per post.
const maxRunning = 4

// errDryRunStopped is why a replay whose dry run was stopped cannot be
// confirmed.
var errDryRunStopped = errors.New("the dry run was stopped before the end, so this replay cannot be confirmed: nothing was replayed; choose the dead letters again for a new plan")

// errBusy is why an action did not start: maxRunning are running.
var errBusy = fmt.Errorf("%d actions are running, the most the console runs at once: wait for one to finish, or stop a replay or purge from its page (Actions), then try again", maxRunning)

func newRegistry() *registry {
	return &registry{plans: map[string]*plan{}, tasks: map[string]*task{}}
}

// newID is a random, unguessable id: a plan's id is what a confirmation
// posts, so a forged request cannot name one.
func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (g *registry) addPlan(p *plan) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.ID == "" {
		p.ID = newID()
	}
	g.plans[p.ID] = p
	if len(g.plans) > maxKept {
		old := slices.SortedFunc(maps.Values(g.plans), func(a, b *plan) int { return a.Created.Compare(b.Created) })
		for _, q := range old[:len(old)-maxKept] {
			delete(g.plans, q.ID)
		}
	}
	g.trim(p)
}

// maxHeldLetters bounds the dead letters that the kept plans and finished
// actions hold (about 50 bytes each, for the sequences and what binds them
// to their letters): each "replay all" over a queue of 100,000 holds 5 MB,
// and maxKept of them would hold a gigabyte.
const maxHeldLetters = 1_000_000

// trim forgets the oldest plans, with the finished actions that carried
// them out, until the letters held are within maxHeldLetters. It keeps
// keep (the plan just made, however large), and every plan an action
// still running uses. g.mu is held.
func (g *registry) trim(keep *plan) {
	inUse := map[*plan]bool{keep: true}
	held := map[*plan]time.Time{} // each plan, and when it was last used
	for _, p := range g.plans {
		held[p] = p.Created
	}
	for _, t := range g.order {
		if t.running() {
			inUse[t.Plan] = true
		}
		if t.Started.After(held[t.Plan]) {
			held[t.Plan] = t.Started
		}
	}
	total := 0
	var old []*plan
	for p := range held {
		total += len(p.Seqs)
		if !inUse[p] {
			old = append(old, p)
		}
	}
	sort.Slice(old, func(i, j int) bool { return held[old[i]].Before(held[old[j]]) })
	for _, p := range old {
		if total <= maxHeldLetters {
			break
		}
		total -= len(p.Seqs)
		delete(g.plans, p.ID)
		g.order = slices.DeleteFunc(g.order, func(t *task) bool {
			if t.Plan == p {
				delete(g.tasks, t.ID)
				return true
			}
			return false
		})
	}
}

func (g *registry) plan(id string) *plan {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.plans[id]
}

// newTask is a task not started yet. Its id is set here, once, so that a
// page may link to it while it starts.
func newTask(kind actionKind, p *plan, dryRun bool) *task {
	return &task{taskView: taskView{ID: newID(), Kind: kind, Plan: p, DryRun: dryRun, Total: len(p.Seqs)}}
}

// start registers a task and runs fn in the background with a context the
// task's stop cancels. parent ends with the console. It returns errBusy,
// and registers and runs nothing, when maxRunning tasks are running.
func (g *registry) start(parent context.Context, t *task, fn func(ctx context.Context) error) error {
	g.mu.Lock()
	running := 0
	for _, o := range g.order {
		if o.running() {
			running++
		}
	}
	if running >= maxRunning {
		g.mu.Unlock()
		return errBusy
	}
	ctx, cancel := context.WithCancel(parent)
	t.mu.Lock()
	t.State, t.Started, t.cancel = taskRunning, time.Now(), cancel
	t.mu.Unlock()
	g.tasks[t.ID] = t
	g.order = append(g.order, t)
	if len(g.order) > maxKept {
		if i := slices.IndexFunc(g.order, func(o *task) bool { return !o.running() }); i >= 0 {
			delete(g.tasks, g.order[i].ID)
			g.order = slices.Delete(g.order, i, i+1)
		}
	}
	g.trim(t.Plan)
	g.mu.Unlock()
	go func() {
		defer cancel()
		t.finish(ctx, fn(ctx))
	}()
	return nil
}

func (g *registry) task(id string) *task {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tasks[id]
}

// recent returns the tasks, newest first.
func (g *registry) recent() []*task {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Clone(g.order)
	slices.Reverse(out)
	return out
}
