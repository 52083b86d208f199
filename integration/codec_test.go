package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/csp-ops/work365-upgrade/internal/codec"
	"github.com/csp-ops/work365-upgrade/rehearsal/stack"
	"github.com/csp-ops/work365-upgrade/workflows"
	"github.com/csp-ops/work365-upgrade/workflows/searchattr"
)

// TestPayloadsEncryptedOnTheRealServer runs an upgrade on the embedded server with the
// rehearsal's default payload encryption and reads its history as someone without the keys
// would: every payload (inputs, results, activity arguments and results, queries' metadata) is
// sealed and holds none of the tenant's data, while the search attributes stay readable. The
// stack's codec server — the Web UI's codec endpoint — gives the input and the result back.
func TestPayloadsEncryptedOnTheRealServer(t *testing.T) {
	s := startStackWith(t, "testdata/codec.yaml", stack.Options{Speed: speed})
	require.NotEmpty(t, s.CodecURL, "the rehearsal encrypts payloads and serves a codec server")
	ctx := context.Background()
	inv := s.Inventory("codec")
	tenant := inv.Tenants[0].Tenant
	launched, err := s.Ops.Launch(ctx, inv)
	require.NoError(t, err)
	require.Len(t, launched, 1)
	id, runID := launched[0].WorkflowID, launched[0].RunID
	result := waitAll(t, s, []string{id}, 5*time.Minute)[id]
	require.Equal(t, workflows.OutcomeUpgraded, result.Outcome, "%s %v", result.Error, result.Warnings)

	// Plaintext that must not be in any payload: the inventory's values and the result's.
	plain := []string{tenant.OrgURL, "adatum-enc.crm", tenant.DisplayName, tenant.TenantID,
		tenant.GlobalAdminUPN, tenant.ServiceAccountUPN, stack.SolutionPackageRef, string(workflows.OutcomeUpgraded)}

	// A client without the codec, as anyone who can read the server's database or API.
	raw, err := client.Dial(client.Options{HostPort: s.Server.FrontendAddress(), Namespace: s.Namespace()})
	require.NoError(t, err)
	defer raw.Close()
	it := raw.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var input, output *commonpb.Payloads
	var sealed, byServer int
	tenantName := ""
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		require.NoError(t, proxy.VisitPayloads(ctx, ev, proxy.VisitPayloadsOptions{
			SkipSearchAttributes: true,
			Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
				for _, p := range ps {
					if serverWritten(ev.GetEventType(), p) {
						byServer++
						continue
					}
					require.True(t, codec.Encrypted(p), "event %d (%s): payload %q is not encrypted: %q", ev.GetEventId(), ev.GetEventType(), p.GetMetadata(), p.GetData())
					for _, s := range plain {
						require.False(t, bytes.Contains(p.GetData(), []byte(s)), "event %d (%s): %q in a payload", ev.GetEventId(), ev.GetEventType(), s)
					}
					sealed++
				}
				return ps, nil
			},
		}))
		attrs := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes()
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			input = a.GetInput()
			attrs = a.GetSearchAttributes()
		}
		if a := ev.GetWorkflowExecutionCompletedEventAttributes(); a != nil {
			output = a.GetResult()
		}
		// Search attributes are not payload-encoded: on-call's queries keep working.
		if p := attrs.GetIndexedFields()[searchattr.TenantName.GetName()]; p != nil {
			require.False(t, codec.Encrypted(p))
			require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &tenantName))
		}
	}
	require.NotNil(t, input, "started event")
	require.NotNil(t, output, "completed event")
	require.Greater(t, sealed, 20, "payloads of the whole upgrade were checked")
	require.Equal(t, tenant.DisplayName, tenantName, "WorkTenantName readable in the raw history")
	t.Logf("raw history: %d payloads sealed with key %q, %d written by the server itself (activity cancelled before it started)",
		sealed, input.Payloads[0].GetMetadata()[codec.MetadataKeyID], byServer)
	found, err := raw.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkTenantName = '" + tenant.DisplayName + "'"})
	require.NoError(t, err)
	require.Len(t, found.GetExecutions(), 1, "a visibility query on a search attribute finds the upgrade")

	// Without the keys, the result is refused with the key's ID and what to do.
	noKeys, err := codec.DataConverter(nil)
	require.NoError(t, err)
	var r workflows.Result
	err = noKeys.FromPayloads(output, &r)
	require.ErrorContains(t, err, `payload is encrypted with key "rehearsal-1", which this process does not have`)

	// Through the codec server, as the Web UI asks it.
	in := decodeViaCodecServer(t, s.CodecURL, input)
	for _, want := range []string{tenant.OrgURL, tenant.DisplayName, tenant.GlobalAdminUPN} {
		require.Contains(t, in, want, "the input decoded by the codec server")
	}
	out := decodeViaCodecServer(t, s.CodecURL, output)
	require.Contains(t, out, `"outcome":"upgraded"`)
	require.Contains(t, out, tenant.DisplayName)
}

// serverWritten is a payload the server writes itself, never through a data converter: the
// details of an activity cancelled before a worker started it.
func serverWritten(t enumspb.EventType, p *commonpb.Payload) bool {
	return t == enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED && string(p.GetData()) == `"ACTIVITY_ID_NOT_STARTED"`
}

// decodeViaCodecServer posts payloads to {codecURL}/{namespace}/decode as the Web UI does and
// returns the decoded payloads' data.
func decodeViaCodecServer(t *testing.T, codecURL string, ps *commonpb.Payloads) string {
	t.Helper()
	body, err := protojson.Marshal(ps)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, codecURL+"/"+stack.DefaultNamespace+"/decode", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", stack.DefaultNamespace)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(b, &out))
	var text strings.Builder
	for _, p := range out.Payloads {
		require.Equal(t, "json/plain", string(p.GetMetadata()["encoding"]))
		text.Write(p.GetData())
	}
	return text.String()
}
