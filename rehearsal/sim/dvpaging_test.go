package sim

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestDataversePages: a list is paged as Dataverse documents: Prefer: odata.maxpagesize caps a
// page (Preference-Applied says so), @odata.nextLink carries a paging cookie until the last
// page, $count counts every row.
func TestDataversePages(t *testing.T) {
	e := newEnv(t, func(s *Scenario) { s.Tenants[0].Jobs = Jobs{Pending: 7} })
	n := e.cloud.Names()
	u := orgA + "/api/data/v9.2/" + n.JobsEntitySet + "?$select=" + n.JobsIDColumn + "&$count=true"
	seen := map[string]bool{}
	for pages := 1; u != ""; pages++ {
		if pages > 3 {
			t.Fatalf("more than 3 pages of 3 rows for 7 jobs")
		}
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+e.token(tenantA, orgA))
		req.Header.Set("Prefer", "odata.maxpagesize=3")
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Value []map[string]any `json:"value"`
			Count int              `json:"@odata.count"`
			Next  string           `json:"@odata.nextLink"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || page.Count != 7 || resp.Header.Get("Preference-Applied") != "odata.maxpagesize=3" {
			t.Fatalf("page %d: %d %+v %v %q", pages, resp.StatusCode, page, err, resp.Header.Get("Preference-Applied"))
		}
		want := 3
		if pages == 3 {
			want = 1
		}
		if len(page.Value) != want || (pages < 3) != (page.Next != "") {
			t.Fatalf("page %d: %d rows, nextLink %q", pages, len(page.Value), page.Next)
		}
		for _, r := range page.Value {
			seen[r[n.JobsIDColumn].(string)] = true
		}
		u = page.Next
	}
	if len(seen) != 7 {
		t.Fatalf("%d distinct rows over the pages, want 7", len(seen))
	}
	// Without Prefer, the page is Dataverse's 5,000 rows: all seven, no nextLink.
	if m := e.dv(tenantA, orgA, "GET", n.JobsEntitySet, nil, 200); len(m["value"].([]any)) != 7 || m["@odata.nextLink"] != nil {
		t.Fatalf("default page: %v", m)
	}
}
