package ops

import (
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// converterDecode decodes a search attribute payload.
func converterDecode(p *commonpb.Payload, out any) error {
	return converter.GetDefaultDataConverter().FromPayload(p, out)
}
