package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// taskBoard keeps a workflow's human tasks: the open ones, the confirmations received, and why
// closed tasks closed, so a late confirmation is refused with a useful message.
type taskBoard struct {
	prefix        string
	seq           int
	open          []*openTask
	closed        map[string]closedTask
	confirmations []Confirmation
	// lateEvidence names the task kinds whose late confirmations are kept as evidence (their
	// effect is observable, so the workflow looks again) and where to send them.
	lateEvidence map[TaskKind]workflow.Channel
}

// closedTask is a task that closed and why, so a late confirmation can be judged.
type closedTask struct {
	Task
	why string
}

type openTask struct {
	Task
	// replies carries the accepted confirmation to the waiting stage.
	replies workflow.Channel
	quiet   bool
	until   time.Time
}

func newTaskBoard(prefix string) *taskBoard {
	return &taskBoard{prefix: prefix, closed: map[string]closedTask{}}
}

// newTask opens a task; the caller waits on its replies channel.
func (b *taskBoard) newTask(ctx workflow.Context, stage Stage, req taskRequest) *openTask {
	b.seq++
	id := fmt.Sprintf("%s%s-%d", b.prefix, req.kind, b.seq)
	t := &openTask{
		Task: Task{
			ID: id, Kind: req.kind, Audience: req.audience, Stage: stage,
			Title: req.title, Instructions: req.instructions, Options: req.options,
			OpenedAt: workflow.Now(ctx),
		},
		replies: workflow.NewBufferedChannel(ctx, 1),
		quiet:   req.quiet,
		until:   req.until,
	}
	b.open = append(b.open, t)
	return t
}

// close removes a task from the open list, remembering why.
func (b *taskBoard) close(id, why string) {
	c := closedTask{why: why}
	if t := b.find(id); t != nil {
		c.Task = t.Task
	}
	b.open = slices.DeleteFunc(b.open, func(t *openTask) bool { return t.ID == id })
	b.closed[id] = c
}

// late returns the closed task a confirmation may still be evidence for: its kind's effect is
// observable and nobody confirmed it yet.
func (b *taskBoard) late(req ConfirmRequest) (Task, bool) {
	c, ok := b.closed[req.TaskID]
	t := c.Task
	if !ok || b.lateEvidence[t.Kind] == nil {
		return Task{}, false
	}
	for _, c := range b.confirmations {
		if c.TaskID == t.ID {
			return Task{}, false
		}
	}
	return t, true
}

func (b *taskBoard) find(id string) *openTask {
	for _, t := range b.open {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// validate refuses a confirmation that does not fit an open task. It must not change state:
// Update validators run before anything is written to history.
func (b *taskBoard) validate(req ConfirmRequest) error {
	if strings.TrimSpace(req.TaskID) == "" {
		return fmt.Errorf("taskId is required: list open tasks with `starter tasks`")
	}
	if strings.TrimSpace(req.By) == "" {
		return fmt.Errorf("by is required: say who confirms task %s", req.TaskID)
	}
	t := b.find(req.TaskID)
	if t == nil {
		if lt, ok := b.late(req); ok {
			if req.As != lt.Audience {
				return fmt.Errorf("task %s is for the %s, not the %s", lt.ID, lt.Audience, orNone(req.As))
			}
			return nil // kept as evidence: the workflow looks at the tenant again
		}
		if c, ok := b.closed[req.TaskID]; ok {
			return fmt.Errorf("task %s is not open (%s); see the open tasks with `starter tasks`", req.TaskID, c.why)
		}
		return fmt.Errorf("task %s is not open: no such task in this upgrade; see the open tasks with `starter tasks`", req.TaskID)
	}
	if req.As != t.Audience {
		return fmt.Errorf("task %s is for the %s, not the %s: confirm with --as %s once they have done it", t.ID, t.Audience, orNone(req.As), t.Audience)
	}
	if len(t.Options) > 0 && !slices.Contains(t.Options, req.Decision) {
		return fmt.Errorf("task %s needs a decision, one of %s (got %q)", t.ID, strings.Join(t.Options, ", "), req.Decision)
	}
	if len(t.Options) == 0 && req.Decision != "" {
		return fmt.Errorf("task %s takes no decision (got %q)", t.ID, req.Decision)
	}
	return nil
}

// accept records a validated confirmation and hands it to the waiting stage.
func (b *taskBoard) accept(ctx workflow.Context, req ConfirmRequest, via string) Confirmation {
	t := b.find(req.TaskID)
	if t == nil {
		// A late confirmation of a closed task (validated): evidence, not a decision.
		lt, _ := b.late(req)
		c := Confirmation{
			TaskID: lt.ID, Kind: lt.Kind, Audience: lt.Audience, By: req.By, Note: req.Note,
			At: workflow.Now(ctx), Via: via, Late: true, Identity: req.Identity, OnBehalfOf: req.OnBehalfOf,
		}
		b.confirmations = append(b.confirmations, c)
		b.lateEvidence[lt.Kind].SendAsync(c)
		return c
	}
	c := Confirmation{
		TaskID: t.ID, Kind: t.Kind, Audience: t.Audience, By: req.By, Note: req.Note,
		Decision: req.Decision, At: workflow.Now(ctx), Via: via, Identity: req.Identity, OnBehalfOf: req.OnBehalfOf,
	}
	b.confirmations = append(b.confirmations, c)
	b.close(t.ID, "confirmed by "+req.By)
	t.replies.Send(ctx, c)
	return c
}

// tasks returns a copy of the open tasks, in the order they opened.
func (b *taskBoard) tasks() []Task {
	out := make([]Task, 0, len(b.open))
	for _, t := range b.open {
		out = append(out, t.Task)
	}
	return out
}

// waitingOn is the audience of the oldest open task, or Nobody.
func (b *taskBoard) waitingOn() Audience {
	if len(b.open) == 0 {
		return Nobody
	}
	return b.open[0].Audience
}

// register installs the confirm Update (validated) and the confirm Signal (validated when it
// is read; refusals are recorded as warnings because a Signal cannot be refused).
func (b *taskBoard) register(ctx workflow.Context, warn func(string)) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateConfirmTask,
		func(ctx workflow.Context, req ConfirmRequest) (Confirmation, error) {
			return b.accept(ctx, req, "update"), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req ConfirmRequest) error {
			if err := req.CheckText(); err != nil {
				return err
			}
			return b.validate(req)
		}},
	); err != nil {
		return err
	}
	ch := workflow.GetSignalChannel(ctx, SignalConfirmTask)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var req ConfirmRequest
			if !ch.Receive(ctx, &req) {
				return
			}
			if err := b.validate(req); err != nil {
				msg := fmt.Sprintf("refused a signalled confirmation from %q: %v", req.By, err)
				warn(msg)
				continue
			}
			b.accept(ctx, req, "signal")
		}
	})
	return nil
}

func orNone(a Audience) string {
	if a == "" {
		return "(no audience given)"
	}
	return string(a)
}
