package ops

import (
	"testing"

	"github.com/csp-ops/work365-upgrade/workflows"
)

// A confirmation sent again is the same Update (Temporal deduplicates it); another person,
// decision or note is another confirmation.
func TestConfirmUpdateIDIsStablePerConfirmation(t *testing.T) {
	req := workflows.ConfirmRequest{TaskID: "get-consent-7", As: workflows.GlobalAdmin, By: "Jane", Note: "link sent"}
	id := ConfirmUpdateID(req)
	if id != ConfirmUpdateID(req) {
		t.Fatal("the same confirmation must have the same Update ID")
	}
	for _, other := range []workflows.ConfirmRequest{
		{TaskID: "get-consent-8", As: req.As, By: req.By, Note: req.Note},
		{TaskID: req.TaskID, As: req.As, By: "John", Note: req.Note},
		{TaskID: req.TaskID, As: workflows.Operator, By: req.By, Note: req.Note},
		{TaskID: req.TaskID, As: req.As, By: req.By, Note: "again"},
		{TaskID: req.TaskID, As: req.As, By: req.By, Note: req.Note, Decision: "retry"},
	} {
		if ConfirmUpdateID(other) == id {
			t.Fatalf("%+v must not share the Update ID of %+v", other, req)
		}
	}
}
