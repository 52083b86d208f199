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

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
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

// Register adds the attributes to the namespace; it is idempotent (attributes that already
// exist are fine), so every worker start may call it.
func Register(ctx context.Context, c client.Client, namespace string) error {
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
