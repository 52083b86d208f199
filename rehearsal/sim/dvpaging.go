package sim

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Dataverse pages a list as documented: at most 5,000 rows a page (the scenario's
// DataversePageSize), fewer when the request says Prefer: odata.maxpagesize=n (answered with
// Preference-Applied), and an @odata.nextLink carrying a paging cookie in $skiptoken while more
// rows remain; $top caps the rows over all pages and $count=true adds @odata.count (at most
// 5,000).
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/page-results

var pageCookieRE = regexp.MustCompile(`pagenumber="(\d+)"`)

// writeDvPage writes one page of a list of total rows; row builds the i-th row on demand.
func (k *call) writeDvPage(entitySet string, total int, row func(i int) map[string]any) {
	if top, err := strconv.Atoi(k.q.Get("$top")); err == nil && top >= 0 && top < total {
		total = top
	}
	size := k.c.scn.DataversePageSize
	prefer := ""
	for _, p := range strings.Split(k.r.Header.Get("Prefer"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "odata.maxpagesize="); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
				size = min(size, n)
				prefer = "odata.maxpagesize=" + strconv.Itoa(n)
			}
		}
	}
	page := 1
	if tok := k.q.Get("$skiptoken"); tok != "" {
		m := pageCookieRE.FindStringSubmatch(tok)
		if m == nil {
			k.dvError(http.StatusBadRequest, "0x80040203", "The $skiptoken is not a paging cookie this organisation issued.")
			return
		}
		page, _ = strconv.Atoi(m[1])
	}
	start := min((page-1)*size, total)
	end := min(start+size, total)
	rows := make([]map[string]any, 0, end-start)
	for i := start; i < end; i++ {
		rows = append(rows, row(i))
	}
	body := map[string]any{"@odata.context": k.dvBase() + "$metadata#" + entitySet, "value": rows}
	if strings.EqualFold(k.q.Get("$count"), "true") {
		body["@odata.count"] = min(total, 5000)
	}
	if end < total {
		q := url.Values{}
		for key, v := range k.q {
			q[key] = v
		}
		q.Set("$skiptoken", fmt.Sprintf(`<cookie pagenumber="%d" pagingcookie="%%3ccookie%%20page%%3d%%22%d%%22%%3e" istracking="False" />`, page+1, page))
		body["@odata.nextLink"] = k.t.org.url + k.r.URL.Path + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	if prefer != "" {
		k.w.Header().Set("Preference-Applied", prefer)
	}
	writeJSON(k.w, http.StatusOK, body)
}

// writeDvRows pages rows already built.
func (k *call) writeDvRows(entitySet string, rows []map[string]any) {
	k.writeDvPage(entitySet, len(rows), func(i int) map[string]any { return rows[i] })
}
