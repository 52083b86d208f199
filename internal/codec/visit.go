package codec

import (
	"context"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// DecodeIn decodes, in place, every payload inside msg (a history, an event, a response) except
// search attributes, which the SDK never encodes. Recorded histories are decoded this way so
// that they replay without keys.
func DecodeIn(ctx context.Context, c converter.PayloadCodec, msg proto.Message) error {
	return proxy.VisitPayloads(ctx, msg, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return c.Decode(ps)
		},
	})
}
