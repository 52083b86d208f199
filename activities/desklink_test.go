package activities

import (
	"context"
	"testing"
)

type lastNotifier struct{ got []Notification }

func (l *lastNotifier) Notify(_ context.Context, n Notification) error {
	l.got = append(l.got, n)
	return nil
}

// The desk link is signed inside the activity: task notifications carry it, others do not,
// and the caller's notification (the activity input recorded in history) never holds it.
func TestNotifyAddsDeskLinkToTaskNotifications(t *testing.T) {
	rec := &lastNotifier{}
	a := &Activities{Notifier: rec, Namespace: "ns1", DeskLinks: func(ns, wf, task string) string {
		return "https://desk.example.com/t/" + ns + "|" + wf + "|" + task
	}}
	for _, ev := range []string{EventTaskOpened, EventTaskReminder, EventTaskEscalated, EventTaskClosed, EventUpgradeEnded} {
		in := Notification{Event: ev, WorkflowID: "wf-1", TaskID: "task-1"}
		if ev == EventUpgradeEnded {
			in.TaskID = ""
		}
		if err := a.Notify(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		if in.DeskLink != "" {
			t.Fatalf("%s: the input was changed", ev)
		}
	}
	want := "https://desk.example.com/t/ns1|wf-1|task-1"
	for i, n := range rec.got {
		withLink := i < 3
		if withLink && n.DeskLink != want {
			t.Errorf("%s: desk link %q, want %q", n.Event, n.DeskLink, want)
		}
		if !withLink && n.DeskLink != "" {
			t.Errorf("%s: unexpected desk link %q", n.Event, n.DeskLink)
		}
	}
	// Without a desk, no link.
	a.DeskLinks = nil
	_ = a.Notify(context.Background(), Notification{Event: EventTaskOpened, WorkflowID: "wf-1", TaskID: "task-1"})
	if l := rec.got[len(rec.got)-1].DeskLink; l != "" {
		t.Fatalf("no desk configured, link %q", l)
	}
}
