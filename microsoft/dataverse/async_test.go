package dataverse

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11 items 3 and 8: unfinished operations of the application user, and both failure texts.
func TestListUnfinishedAsyncOperationsAndFailureText(t *testing.T) {
	owner := "0a0a0a0a-1111-2222-3333-444444444444"
	f, c := newFakeOrg(t,
		exchange{method: "GET", path: "asyncoperations",
			query: url.Values{"$filter": {"_ownerid_value eq " + owner + " and statecode ne 3"}, "$select": {asyncOpSelect}, "$orderby": {"createdon desc"}},
			resp:  `{"value":[{"asyncoperationid":"` + opID + `","name":"Import Solution","statecode":0,"statuscode":0}]}`},
		exchange{method: "GET", path: "asyncoperations(" + opID + ")", query: url.Values{"$select": {asyncOpSelect}},
			resp: `{"asyncoperationid":"` + opID + `","statecode":3,"statuscode":31,"message":"0x80048060 missing dependency","friendlymessage":"The solution needs Work365Core."}`})
	ops, err := c.ListUnfinishedAsyncOperations(ctx, f.srv.URL, owner)
	require.NoError(t, err)
	require.Len(t, ops, 1)
	assert.Equal(t, "Import Solution", ops[0].Name)
	o, err := c.GetAsyncOperation(ctx, f.srv.URL, opID)
	require.NoError(t, err)
	assert.Equal(t, "The solution needs Work365Core. (technical: 0x80048060 missing dependency)", o.FailureText())
	assert.Equal(t, "only technical", AsyncOperation{Message: "only technical"}.FailureText())
}
