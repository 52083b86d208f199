// Package searchattr declares, once, the custom search attributes on-call filters upgrades by
// in the Temporal Web UI, and registers them in a namespace.
//
// Values are stored unencrypted: they hold no secret and nothing that identifies people
// beyond the tenant's ID and name.
package searchattr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/csp-ops/work365-upgrade/internal/ctxtime"
)

// The typed keys.
var (
	Fleet       = temporal.NewSearchAttributeKeyKeyword("WorkFleet")
	TenantID    = temporal.NewSearchAttributeKeyKeyword("WorkTenantId")
	TenantName  = temporal.NewSearchAttributeKeyKeyword("WorkTenantName")
	Wave        = temporal.NewSearchAttributeKeyKeyword("WorkWave")
	Stage       = temporal.NewSearchAttributeKeyKeyword("WorkUpgradeStage")
	WaitingOn   = temporal.NewSearchAttributeKeyKeyword("WorkWaitingOn")
	StageSince  = temporal.NewSearchAttributeKeyTime("WorkStageSince")
	FromVersion = temporal.NewSearchAttributeKeyKeyword("WorkFromVersion")
	LinkRound   = temporal.NewSearchAttributeKeyInt64("WorkLinkRound")
)

// All returns every custom attribute with its type, for registration.
func All() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		Fleet.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		TenantID.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		TenantName.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		Wave.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		Stage.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		WaitingOn.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		StageSince.GetName():  enumspb.INDEXED_VALUE_TYPE_DATETIME,
		FromVersion.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		LinkRound.GetName():   enumspb.INDEXED_VALUE_TYPE_INT,
	}
}

// usableWithin bounds how long Register waits for attributes it added to be accepted in
// queries: the server refreshes its namespace registry every ~10 s.
const usableWithin = 90 * time.Second

// Register adds the attributes to the namespace; it is idempotent (attributes that already
// exist are fine), so every worker start may call it. It returns once a visibility query
// naming every attribute is accepted, so workflows may upsert them and the starter may filter
// by them as soon as the worker polls.
func Register(ctx context.Context, c client.Client, namespace string) error {
	if err := add(ctx, c, namespace); err != nil {
		return err
	}
	return waitUsable(ctx, c, namespace)
}

func add(ctx context.Context, c client.Client, namespace string) error {
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %q (is Temporal reachable and the namespace created?): %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range All() {
		if have, ok := existing.GetCustomAttributes()[name]; ok {
			if have != typ {
				return fmt.Errorf("search attribute %s exists in namespace %q as %s, but this worker needs %s: remove or rename it", name, namespace, have, typ)
			}
			continue
		}
		missing[name] = typ
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register search attributes in namespace %q (on Temporal Cloud, add them with tcld or the UI): %w", namespace, err)
	}
	return nil
}

// probeQuery names every attribute once, in a condition true or false, only its parsing matters.
func probeQuery() string {
	var terms []string
	for name, typ := range All() {
		switch typ {
		case enumspb.INDEXED_VALUE_TYPE_DATETIME:
			terms = append(terms, name+" < '1970-01-02T00:00:00Z'")
		case enumspb.INDEXED_VALUE_TYPE_INT:
			terms = append(terms, name+" = -1")
		default:
			terms = append(terms, name+" = '-'")
		}
	}
	sort.Strings(terms)
	return strings.Join(terms, " OR ")
}

// waitUsable counts executions with probeQuery until the frontend accepts it: right after
// AddSearchAttributes, ListSearchAttributes shows them but queries and upserts are refused
// ("invalid search attribute") until the server's namespace cache refreshes.
func waitUsable(parent context.Context, c client.Client, namespace string) error {
	ctx, cancel := context.WithTimeout(parent, usableWithin)
	defer cancel()
	q := probeQuery()
	for {
		_, err := c.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: q})
		var invalid *serviceerror.InvalidArgument
		if err == nil {
			return nil
		}
		if !errors.As(err, &invalid) {
			return fmt.Errorf("query by the search attributes in namespace %q (is visibility reachable?): %w", namespace, err)
		}
		if ctxtime.Sleep(ctx, 500*time.Millisecond) != nil {
			if parent.Err() != nil {
				return fmt.Errorf("wait for the search attributes of namespace %q to be usable: %w", namespace, parent.Err())
			}
			return fmt.Errorf("search attributes registered in namespace %q are still refused in queries after %s (check the server's visibility store and its search attribute mapping): %w", namespace, usableWithin, err)
		}
	}
}
